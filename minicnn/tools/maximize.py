"""Activation maximisation of hidden units (Erhan, Bengio, Courville & Vincent 2009, sec. 3.1).

x* = argmax_x h_ij(x) subject to ||x|| = rho: gradient ascent on the input from a random start,
projecting back onto the sphere after every step (or, instead of the constraint, an L2 penalty).
The objective is computed with ``net.run(x, stop=layer)`` and ``record.backward(dy, start=layer)``,
so the layers above the unit never run. All units and all random starts go through the network as
one batch.
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError, quote
from minicnn.record import INPUT
from minicnn.seeding import make_rng
from minicnn.tools.ascent import AscentResult, check_regularizers, input_shape_of, reference_image, run_ascent
from minicnn.tools.penalties import L2Penalty

REDUCTIONS = ("mean", "sum")


def parse_units(unit, out_shape: tuple, layer: str) -> list[tuple]:
    """unit(s) -> a list of index tuples into one image's output of ``layer`` (shape ``out_shape``).

    For a layer with a (C, H, W) output an int c means the whole feature map c, a tuple (c, y, x) a
    single unit; for a (F,) output an int is the index. A list mixes any of these.
    """
    units = unit if isinstance(unit, list) else [unit]
    if not units:
        raise MinicnnError("expected at least one unit")
    out = []
    for u in units:
        arr = np.atleast_1d(np.asarray(u, dtype=object if isinstance(u, str) else None))
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise MinicnnError(f"a unit is an int or a tuple of ints, got {quote(u)}")
        idx = tuple(int(v) for v in arr)
        if len(idx) not in (1, len(out_shape)) or (len(idx) == 1 and len(out_shape) not in (1, 3)):
            raise MinicnnError(
                f"unit {u!r} does not fit layer {layer!r} with output {out_shape}: expected a "
                + ("channel index or (channel, y, x)" if len(out_shape) == 3 else "feature index")
            )
        for i, n in zip(idx, out_shape):
            if not 0 <= i < n:
                raise MinicnnError(
                    f"unit {u!r} out of range for layer {layer!r} with output shape {out_shape}"
                )
        out.append(idx)
    return out


def units_objective_signal(xp, units: list[tuple], out_shape: tuple, repeat: int, reduce: str, dtype):
    """dy (len(units) * repeat, *out_shape) of ``dtype`` on xp: d(objective)/d(layer output) per row.

    Row block i (``repeat`` rows, one per random start) belongs to units[i]. A single unit or dense
    index gets 1 at its position; a whole feature map gets 1 / (H W) everywhere ("mean") or 1
    ("sum"), so that row r's objective is (dy[r] * output[r]).sum(). (Not reconstruct.unit_signal, whose
    signal holds the activation values themselves, to be projected down.)
    """
    dy = np.zeros((len(units) * repeat, *out_shape), dtype=dtype)
    for i, idx in enumerate(units):
        rows = slice(i * repeat, (i + 1) * repeat)
        if len(idx) == 1 and len(out_shape) == 3:
            dy[rows, idx[0]] = 1.0 / (out_shape[1] * out_shape[2]) if reduce == "mean" else 1.0
        else:
            dy[(rows, *idx)] = 1.0
    return xp.asarray(dy)


def maximize(
    net,
    layer: str,
    unit,
    starts: int = 1,
    steps: int = 100,
    lr: float = 0.05,
    rho: float | None = None,
    l2: float | None = None,
    reduce: str = "mean",
    regularizers=(),
    seed=None,
    input_shape=None,
    optimizer: str = "normalized",
    progress: bool = True,
) -> AscentResult:
    """Inputs that maximally activate ``unit`` of ``layer`` (Erhan et al. 2009, sec. 3.1).

    Args:
        net: a Sequential network; layer: the name of any of its layers.
        unit: for a (C, H, W) layer an int (feature map c: its mean, or its sum with reduce="sum")
            or (c, y, x) (one unit); for a (F,) layer an int; or a list of these (one batch).
        starts: random starts per unit, each uniform in [0, 1] per pixel in the network's input
            space (Erhan et al.), drawn from ``seed``; the random input modifiers (Jitter) then
            draw from the same stream, so one seed fixes the whole run.
        steps, lr, optimizer: gradient ascent; "normalized" (default) moves each pixel by lr on
            average per step, whatever the scale of the unit's gradient (it differs by orders of
            magnitude between layers); "sgd", "momentum" and "adam" are also available.
        rho: the norm constraint ||x - mean|| = rho, enforced by projection after every step
            (default: each start's own norm, so the start is feasible).
        l2: instead of the constraint, a penalty l2 ||x - mean||^2 (no projection); give one or
            the other.
        regularizers: extra penalties and input modifiers (L2Decay, GaussianBlur, Jitter, ...; see
            tools/penalties.py, tools/modifiers.py).

    Returns an AscentResult with len(units) * starts rows, unit-major (all starts of unit 0 first):
    image, display, history (activation minus penalties per step), info["objective"] (the
    activation per step; the pre-activation for a ReLU layer, see below), info["activation"] (the
    activation of the final image), info["unit"] (the unit of each row), info["start_index"] and
    info["best"] (row of the best start of each unit).
    """
    if reduce not in REDUCTIONS:
        raise MinicnnError(f"reduce must be one of {', '.join(REDUCTIONS)}, got {reduce!r}")
    if isinstance(starts, bool) or not isinstance(starts, (int, np.integer)) or starts < 1:
        raise MinicnnError(f"starts must be a positive integer, got {starts!r}")
    if l2 is not None and rho is not None:
        raise MinicnnError("give either rho (norm constraint) or l2 (penalty), not both")
    if l2 is not None and (not np.isfinite(l2) or l2 < 0):
        raise MinicnnError(f"l2 must be a finite number >= 0, got {l2!r}")
    if rho is not None and (not np.isfinite(rho) or rho <= 0):
        raise MinicnnError(f"rho must be a finite number > 0, got {rho!r}")
    shape = input_shape_of(net, input_shape)
    out_shape = tuple(net.shapes(shape)[net.index(layer)])
    units = parse_units(unit, out_shape, layer)
    xp = net.xp
    ref = reference_image(net, shape)
    rng = make_rng(seed)
    n = len(units) * starts
    x0 = xp.asarray(rng.random((n, *shape), dtype=np.float64).astype(net.dtype))
    dy = units_objective_signal(xp, units, out_shape, starts, reduce, net.dtype)

    def activation(out):
        return (out * dy).reshape(n, -1).sum(axis=1)

    # NOTE: a ReLU unit that is off at the start has a zero gradient and would never move, so for a
    # ReLU layer the ascent climbs its input (the pre-activation): where the unit is on, both have
    # the same value and gradient, and the maximiser is the same.
    target = layer
    if net[layer].is_rectifier:
        (source,) = net.inputs[net[layer].name]  # what the ReLU reads: in a graph, not the node run before
        target = layer if source == INPUT else source

    def objective(x):
        record = net.run(x, stop=target)
        return to_numpy(activation(record.output())), record.backward(dy, mode="gradient", start=target)

    project, regs = None, check_regularizers(regularizers)
    if l2 is not None:
        regs = (L2Penalty(l2),) + regs
    else:
        norms = xp.sqrt(((x0 - ref) ** 2).reshape(n, -1).sum(axis=1))
        radius = (xp.full_like(norms, rho) if rho is not None else norms).reshape(-1, 1, 1, 1)

        def project(x):
            d = x - ref
            size = xp.sqrt((d * d).reshape(n, -1).sum(axis=1)).reshape(-1, 1, 1, 1)
            return ref + d * (radius / xp.maximum(size, 1e-12))

    result = run_ascent(
        net,
        x0,
        objective,
        steps=steps,
        lr=lr,
        regularizers=regs,
        seed=rng,  # the same stream goes on: the modifiers' draws follow the starts'
        optimizer=optimizer,
        project=project,
        ref=ref,
        desc=f"maximize {layer}",
        progress=progress,
    )
    final = to_numpy(activation(net.run(result.image, stop=layer).output())).astype(np.float64)
    per_unit = final.reshape(len(units), starts)
    result.info.update(
        activation=final,
        unit=[u for u in units for _ in range(starts)],
        start_index=np.tile(np.arange(starts), len(units)),
        best=np.arange(len(units)) * starts + per_unit.argmax(axis=1),
    )
    return result
