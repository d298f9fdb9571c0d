"""How long a command will take, said before it starts: one measured pass, times a count of passes.

The unit is the wall time of one forward and one backward pass of one image through the network at
its input size, measured here on this machine (the second of two calls: the first may compile
Numba's kernels, see ``measure_pass``). A tool's cost is counted in such passes (e.g. a class model
of 16 classes and 200 steps is 16 x 200 passes), so the estimate is that count times the unit. It
is rough: a batch runs faster per image than one image, a pass stopped at a hidden layer is counted
whole, and the time spent drawing and writing files is left out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

# A first call slower than the second by more than this many seconds compiled kernels (loading them
# from Numba's on-disk cache takes well under a second).
COMPILE_SECONDS = 2.0


@dataclass
class PassTime:
    """seconds: one forward + backward of one image (the second call); first: the first call's time;
    compiled: True when the first call compiled kernels (first - seconds > COMPILE_SECONDS)."""

    seconds: float
    first: float

    @property
    def compiled(self) -> bool:
        return self.first - self.seconds > COMPILE_SECONDS


def measure_pass(net, shape=None) -> PassTime:
    """Time a forward and a backward pass (the gradient rule) of one zero-mean random image of
    ``shape`` (C, H, W), default the network's input shape, twice; returns both times.

    Whether Numba compiled is read from the first call's time, not from its cache folder, so the
    answer does not depend on where the cache lives (a fresh install, a cleared cache and a new
    NUMBA_CACHE_DIR all show the same way)."""
    import numpy as np

    from minicnn.seeding import make_rng

    shape = tuple(net.input_shape if shape is None else shape)
    x = net.xp.asarray(make_rng(0).standard_normal((1, *shape)).astype(net.dtype))
    times = []
    for _ in range(2):
        start = time.perf_counter()
        record = net.run(x)
        dy = np.ones(record.output().shape, dtype=net.dtype)
        record.backward(net.xp.asarray(dy), mode="gradient")
        times.append(time.perf_counter() - start)
    return PassTime(times[1], times[0])


def duration(seconds: float) -> str:
    """12.3 -> "12 s", 754 -> "12 min 34 s": a duration as a person reads it."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"
