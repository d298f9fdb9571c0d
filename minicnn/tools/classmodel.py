"""Class model visualisation (Simonyan, Vedaldi & Zisserman 2013, sec. 2).

Find the image I that maximises S_c(I) - lambda ||I||^2, where S_c is the unnormalised score of
class c (before softmax: maximising the probability can be done by lowering the other classes),
by gradient ascent from the zero image of mean-subtracted input. Several classes are optimised as
one batch: one forward and one backward pass per step for all of them.
"""

from __future__ import annotations

import warnings

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError, quote
from minicnn.tools.ascent import AscentResult, check_regularizers, input_shape_of, reference_image, run_ascent
from minicnn.tools.penalties import L2Penalty


def score_layer(net) -> str:
    """Name of the layer whose output are the class scores: the last one, or the one before a
    final layer that turns scores into probabilities (a Softmax: the scores must be taken before it)."""
    last = net.layers[-1]
    if last.is_probability:
        if len(net.layers) < 2:
            raise MinicnnError("the network has no layer before its Softmax")
        return net.layers[-2].name
    return last.name


def check_classes(target, num_classes: int) -> np.ndarray:
    """target: one class index or a list of them -> (M,) int64, each in [0, num_classes)."""
    arr = np.atleast_1d(np.asarray(target))
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise MinicnnError(f"target must be a class index or a non-empty list of them, got {quote(target)}")
    bad = arr[(arr < 0) | (arr >= num_classes)]
    if bad.size:
        raise MinicnnError(
            f"class {int(bad[0])} out of range: the network has {num_classes} classes (0..{num_classes - 1})"
        )
    return arr.astype(np.int64)


def class_model(
    net,
    target,
    steps: int = 200,
    lr: float = 0.1,
    l2: float = 0.01,
    regularizers=(),
    seed=None,
    input_shape=None,
    optimizer: str = "sgd",
    mean_image=None,
    progress: bool = True,
) -> AscentResult:
    """Class model images for the class(es) ``target`` (Simonyan et al. 2013, sec. 2, eq. 1).

    Args:
        net: a Sequential network whose forward returns class scores (N, K).
        target: a class index or a list of M indices; one image per entry, optimised together.
        steps, lr: plain gradient ascent I <- I + lr * d/dI [S_c(I) - l2 ||I - mean||^2].
        l2: lambda of the paper's L2 penalty (distance to the mean image, see reference_image).
        regularizers: extra penalties (tools/penalties.py) and input modifiers (tools/modifiers.py;
            Yosinski et al. 2015: L2Decay, GaussianBlur, Clip, Jitter, ...); the default () is the
            paper's setting.
        seed: for the random parts of regularisers (jitter); the start is the deterministic zero
            (mean) image.
        input_shape: (C, H, W), default ``meta["input_shape"]``.
        optimizer: "sgd" (the paper's plain ascent), "momentum" or "adam".
        mean_image: (C, H, W) the training mean in the network's input space: the start, and the
            point the L2 penalty pulls towards. Default: reference_image (zeros for mean-subtracted
            inputs, see ascent.MEAN_SUBTRACTED; ``meta["mean_image"]``, else black, for "unit"
            inputs). NOTE: a digit model whose first biases are <= 0 is dead at the black image
            (every ReLU off, zero gradient); the shipped models therefore store the mean held-out
            digit as ``meta["mean_image"]``, so the default starts there.

    Returns an AscentResult: image (M, C, H, W), display (M, H, W, C) in [0, 1], history (M, steps)
    (score minus penalties at each step), info["objective"] (the raw score S_c per step) and
    info["target"] (M,).

    Defaults: the paper's setting (plain ascent, the L2 penalty only, from the mean image); the
    paper gives no numbers for lambda or the step, so lr 0.1, l2 0.01 and 200 steps are ours. On
    the shipped digit models, started from the mean held-out digit, every class model is then
    recognised as its own class by the model it was made for (benchmarks/optimisation_tools.py).
    """
    shape = input_shape_of(net, input_shape)
    classes = check_classes(target, net.shapes(shape)[net.index(score_layer(net))][0])
    if not np.isfinite(l2) or l2 < 0:
        raise MinicnnError(f"l2 must be a finite number >= 0, got {l2!r}")
    xp = net.xp
    stop = score_layer(net)
    if mean_image is None:
        ref = reference_image(net, shape)
    else:
        ref = xp.asarray(np.asarray(to_numpy(mean_image), dtype=net.dtype))
        if ref.shape != shape:
            raise MinicnnError(f"mean_image must have shape {shape}, got {tuple(ref.shape)}")
    rows = xp.arange(len(classes))
    cols = xp.asarray(classes)
    at_start = True  # the first call of the objective sees the start image

    def objective(x):
        nonlocal at_start
        record = net.run(x, stop=stop)
        scores = record.output()
        dy = xp.zeros_like(scores)
        dy[rows, cols] = 1
        grad = record.backward(dy, mode="gradient", start=stop)
        if at_start and not bool((grad != 0).reshape(len(grad), -1).any(axis=1).all()):
            warnings.warn(
                "class model: the score has zero gradient at the start image (every ReLU off?); "
                "the image will not move: pass mean_image= (e.g. the mean training image)",
                stacklevel=4,
            )
        at_start = False
        return to_numpy(scores[rows, cols]), grad

    x0 = xp.broadcast_to(ref, (len(classes), *shape)).copy()
    regs = (L2Penalty(l2),) + check_regularizers(regularizers)
    result = run_ascent(
        net,
        x0,
        objective,
        steps=steps,
        lr=lr,
        regularizers=regs,
        seed=seed,
        optimizer=optimizer,
        ref=ref,
        desc="class model",
        progress=progress,
    )
    result.info["target"] = classes
    return result
