"""How long a command will take, said before it starts: one measured pass, times a count of passes.

The unit is the wall time of one forward and one backward pass of one image through the network at
its input size, measured here on this machine (the faster of the second and third calls: the first
may compile Numba's kernels, see ``measure_pass``). A tool's cost is counted in such passes (e.g. a
class model of 16 classes and 200 steps is 16 x 200 passes), so the estimate is that count times the
unit. It is rough: a batch runs faster per image than one image, a pass stopped at a hidden layer is
counted whole, and loading, compiling and drawing are left out (on a small network they are most of
the time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class PassTime:
    """seconds: one forward + backward of one image (the faster of the second and third calls);
    first: the first call's time; compiled: True when Numba's cache held none of minicnn's kernels
    before the first call, so that the first call compiled them."""

    seconds: float
    first: float
    compiled: bool = False


def measure_pass(net, shape=None) -> PassTime:
    """Time a forward and a backward pass (the gradient rule) of one random image of ``shape``
    (C, H, W), default the network's input shape, three times; returns a PassTime.

    Whether the first call compiled is asked of Numba's cache (``kernels.compiled.kernels_compiled``,
    wherever the cache lives) rather than read from the first call's time: on a busy machine a warm
    first call, which loads the compiled kernels and starts the threads, can be as slow as a compile
    of a few small kernels."""
    import numpy as np

    from minicnn.kernels.compiled import kernels_compiled
    from minicnn.seeding import make_rng

    compiled = not kernels_compiled()
    shape = tuple(net.input_shape if shape is None else shape)
    x = net.xp.asarray(make_rng(0).standard_normal((1, *shape)).astype(net.dtype))
    times = []
    for _ in range(3):
        start = time.perf_counter()
        record = net.run(x)
        dy = np.ones(record.output().shape, dtype=net.dtype)
        record.backward(net.xp.asarray(dy), mode="gradient")
        times.append(time.perf_counter() - start)
    return PassTime(min(times[1:]), times[0], compiled)


def duration(seconds: float) -> str:
    """12.3 -> "12 s", 754 -> "12 min 34 s": a duration as a person reads it."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"
