"""Checking another framework's attribution map against minicnn's on the same model and input.

``verify(net, x, reference, method)`` computes minicnn's map for ``method`` and compares it with
``reference`` (an array, or a .npy / .npz file). What each method's map is (N images, C channels,
input H x W; Grad-CAM at the layer's h x w):

    method            minicnn computes                                reference (Captum name)
    gradient          dS_t/dx, (N, C, H, W)                           Saliency(abs=False)
    saliency          max_c |dS_t/dx| (N, H, W) (Simonyan et al.      Saliency (abs=True): a (N, C, H, W)
                      2013, sec. 3.1)                                 reference is reduced by max over C
    gradient_x_input  x * dS_t/dx (N, C, H, W) (Shrikumar et al. 2016) InputXGradient
    deconvnet         the DeconvNet signal (Zeiler & Fergus 2013)      Deconvolution
    guided            guided backpropagation (Springenberg et al. 2015) GuidedBackprop
    grad_cam          ReLU(sum_k alpha_k A_k) at the layer (N, h, w)  LayerGradCam(relu_attributions=True)
                      (Selvaraju et al. 2017, eq. 1-2)                 (N, 1, h, w)
    occlusion         mean drop of S_t over the windows covering      Occlusion: a (N, C, H, W) reference
                      each pixel (N, H, W) (Zeiler & Fergus 2013)      must be equal over C; channel 0 is used

Layouts of the reference (``layout="auto"`` tells them apart by the shapes; pass one to decide):
"NCHW" (PyTorch), "NHWC" (Keras, TensorFlow), "NHW" (one map per image), and the same without the
batch axis for one image ("CHW", "HWC", "HW"). A .npz file must hold one array, or name it (``key``).
One image's map given for a batch of several (pytorch-grad-cam's guided backpropagation returns one)
is compared with every image, never agrees, and is named "batch" with the image it belongs to.

The comparison (scale = max |reference|, over the whole batch):
    max_rel_diff        max |ours - reference| / scale
    fraction_beyond     fraction of entries with |ours - reference| > tol * scale
    rank_correlation    Spearman's rho of the two maps (ties get their average rank)
    worst               (n, y, x) of the largest difference; ``diff`` holds |ours - reference| per
                        pixel (max over channels), (N, H, W), for the picture
They agree when max_rel_diff <= tol (and, for saliency, the reference has no negative entries).

When they disagree, ``tools/diagnosis`` tests named hypotheses (sign, scale, layout, another class,
method or backward rule, ...) and ``diagnosis`` lists those that explain the difference, best first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError
from minicnn.rules import MODES

#: the methods of the table above, which have a Captum reference (tools/captum_reference.py); any
#: other method of the registry (tools/methods.py) that explains a class is verified against a map
#: file the same way (``verifiable``), its map as the registry computes it
METHODS = ("saliency", "gradient", "gradient_x_input", "deconvnet", "guided", "grad_cam", "occlusion")


def verifiable() -> tuple[str, ...]:
    """The canonical names of every method verify compares: the table's, then the registry's other
    methods whose map explains a class (not a layer's unit)."""
    from minicnn.tools import methods

    return METHODS + tuple(n for n in methods.NAMES if n not in METHODS and methods.METHODS[n].target)


LAYOUTS = ("auto", "NCHW", "NHWC", "NHW", "CHW", "HWC", "HW")


@dataclass
class VerifyResult:
    """The comparison of minicnn's map with a reference (see the module docstring).

    ours, reference: the two maps in minicnn's layout (float64). diff: (N, H, W) |ours - reference|,
    max over channels. worst: (n, y, x). layout: the reference's layout as read.
    diagnosis: the explanations of a difference (``tools/diagnosis.Explanation``), best first;
    closest: the hypothesis that came closest when none explains it (or None). signed: a saliency
    reference with negative entries (never a saliency map, whatever it compares to). transposed: a
    reference that fits only with height and width swapped (compared swapped back; never agrees).
    single: one image's map given for a batch of several (compared with each image; never agrees).
    """

    method: str
    max_rel_diff: float
    fraction_beyond: float
    rank_correlation: float
    worst: tuple
    tol: float
    scale: float
    layout: str
    ours: np.ndarray
    reference: np.ndarray
    diff: np.ndarray
    diagnosis: list = field(default_factory=list)
    closest: object = None
    signed: bool = False
    transposed: bool = False  # the reference fitted only with height and width swapped
    single: bool = False  # one image's map given for a batch (compared with every image; never agrees)

    @property
    def agree(self) -> bool:
        return bool(self.max_rel_diff <= self.tol) and not (self.signed or self.transposed or self.single)

    def lines(self) -> list[str]:
        verdict = "AGREE" if self.agree else "DISAGREE"
        out = [
            f"{self.method}: max relative difference {self.max_rel_diff:.3g} (tolerance {self.tol:g}), "
            f"{100 * self.fraction_beyond:.3g}% of entries beyond it, rank correlation "
            f"{self.rank_correlation:.6f}",
            f"largest difference at image {self.worst[0]}, row {self.worst[1]}, column {self.worst[2]} "
            f"(reference layout {self.layout}, scale {self.scale:.4g}): {verdict}",
        ]
        out += [e.line() for e in self.diagnosis if e.same_as is None]
        same = [f"{e.cause}: {e.detail}" for e in self.diagnosis if e.same_as is not None]
        if same:  # hypotheses that build the very map of one above: named once, briefly
            more = "; ..." if len(same) > 3 else ""
            out.append(f"  the same map under {len(same)} other hypotheses: " + "; ".join(same[:3]) + more)
        if self.closest is not None and not self.diagnosis:
            c = self.closest
            out.append(
                f"not explained by a named cause; closest: {c.cause}: {c.detail} (residual {c.residual:.2g})"
            )
        return out


def read_map(path, key: str | None = None) -> np.ndarray:
    """The array in a .npy or .npz file (for .npz: the only array, or ``key``), never pickles."""
    path = Path(path)
    if not path.is_file():
        raise MinicnnError(f"map file {path} not found (expected a .npy or .npz file)")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise MinicnnError(f"{path}: not a readable .npy/.npz file ({str(exc).splitlines()[0]})") from None
    if isinstance(data, np.ndarray):
        return data
    with data:
        names = list(data.keys())
        if key is None and len(names) != 1:
            raise MinicnnError(f"{path}: holds arrays {names}; name one with --key")
        name = key if key is not None else names[0]
        if name not in names:
            raise MinicnnError(f"{path}: no array {name!r} (found {', '.join(names)})")
        return data[name]


def _layout_axes(layout: str):
    """(has batch axis, channel axis position or None) of a layout name."""
    batch = layout.startswith("N")
    body = layout[1:] if batch else layout
    return batch, (body.index("C") if "C" in body else None)


def to_layout(reference, n: int, channels: int | None, hw: tuple, layout: str = "auto"):
    """``reference`` as (N, C, H, W) float64 and the layout it was read as.

    n, hw: minicnn's batch size and map size; channels: the channel count it must have, or None
    (any: the caller reduces them). ``layout="auto"`` takes the first layout of LAYOUTS with the
    reference's rank whose axes fit. MinicnnError when none fits.
    """
    ref = np.asarray(reference)
    if ref.dtype == object or not np.issubdtype(ref.dtype, np.number):
        raise MinicnnError(f"the map must be numeric, got dtype {ref.dtype}")
    if layout not in LAYOUTS:
        raise MinicnnError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    candidates = [s for s in LAYOUTS[1:] if len(s) == ref.ndim] if layout == "auto" else [layout]
    for name in candidates:
        if len(name) != ref.ndim:
            continue
        batch, c_axis = _layout_axes(name)
        a = ref if batch else ref[None]
        a = np.moveaxis(a, 1 + c_axis, 1) if c_axis is not None else a[:, None]
        if a.shape[0] == n and a.shape[2:] == tuple(hw) and channels in (None, a.shape[1]):
            return a.astype(np.float64), name
    want = f"({n}, {'C' if channels is None else channels}, {hw[0]}, {hw[1]})"
    raise MinicnnError(
        f"the map has shape {ref.shape}, which fits none of the layouts {', '.join(candidates)} "
        f"for minicnn's map {want} (N, C, H, W)"
    )


def rank_correlation(a, b) -> float:
    """Spearman's rho of two arrays of the same size: the Pearson correlation of their ranks, ties
    given the average of the ranks they span (Spearman 1904). NaN when either is constant."""
    ra, rb = _ranks(np.ravel(a)), _ranks(np.ravel(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def _ranks(v) -> np.ndarray:
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # rank (1-based) of the last member of each group of equal values
    return (ends - (counts - 1) / 2.0)[inverse]


def compare(ours, reference, tol: float, method: str = "", layout: str = "") -> VerifyResult:
    """Compare two maps of the same shape (N, [C,] H, W); see the module docstring."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    if ours.shape != ref.shape:
        raise MinicnnError(f"maps differ in shape: {ours.shape} and {ref.shape}")
    if not np.isfinite(ref).all():
        raise MinicnnError("the reference map contains NaN or Inf")
    scale = float(np.abs(ref).max())
    if scale == 0:
        raise MinicnnError("the reference map is all zeros: nothing to compare against")
    err = np.abs(ours - ref)
    diff = err.max(axis=1) if err.ndim == 4 else err
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    return VerifyResult(
        method=method,
        max_rel_diff=float(err.max() / scale),
        fraction_beyond=float((err > tol * scale).mean()),
        rank_correlation=rank_correlation(ours, ref),
        worst=worst,
        tol=float(tol),
        scale=scale,
        layout=layout,
        ours=ours,
        reference=ref,
        diff=diff,
    )


def minicnn_map(net, x, method: str, target="predicted", layer=None, size=8, stride=4, fill="zero"):
    """minicnn's map of ``method`` for images x (N, C, H, W): a host float64 array (see the table)."""
    import minicnn as mc
    from minicnn.tools import methods
    from minicnn.tools.targets import as_batch, forward_record, one_hot, resolve_targets

    method = methods.canonical(method)
    if method not in verifiable():
        raise MinicnnError(f"method {method!r} explains no class; verify compares {', '.join(verifiable())}")
    x = as_batch(net, x)
    if method not in METHODS:
        out = methods.compute(method, net, x, target)
    elif method in (*MODES, "gradient_x_input"):
        rec = forward_record(net, x)
        scores = rec.output()
        mode = method if method in MODES else "gradient"  # gradient x input: the gradient rule
        g = rec.backward(one_hot(resolve_targets(target, scores), scores), mode=mode)
        out = g * x if method == "gradient_x_input" else g
    elif method == "saliency":
        out = mc.saliency(net, x, target)
    elif method == "grad_cam":
        out = mc.grad_cam(net, x, target, layer=layer, upsample=False)
    else:
        out = mc.occlusion(net, x, target, size=size, stride=stride, fill=fill, progress=False).attribution
    return np.asarray(to_numpy(out), dtype=np.float64)


def reduce_channels(ref, method: str) -> np.ndarray:
    """A (N, C, H, W) reference -> (N, H, W) for the methods whose minicnn map has no channels."""
    if method == "saliency":  # Captum's Saliency gives |g| per channel: max over C of it
        # A signed reference keeps the sign of its largest entry per pixel, so that it is not
        # silently made a saliency map; its absolute value is the diagnosis "abs".
        pick = np.abs(ref).argmax(axis=1)[:, None]
        return np.take_along_axis(ref, pick, axis=1)[:, 0]
    if method == "occlusion":
        if ref.shape[1] > 1 and not np.allclose(ref, ref[:, :1], rtol=1e-6, atol=0):
            raise MinicnnError("an occlusion map with channels must be the same in every channel")
        return ref[:, 0]
    if ref.shape[1] != 1:
        raise MinicnnError(f"a {method} map has one channel per pixel, the reference has {ref.shape[1]}")
    return ref[:, 0]


def verify(
    net,
    x,
    reference,
    method: str = "saliency",
    target="predicted",
    tol: float = 1e-3,
    layout: str = "auto",
    key: str | None = None,
    layer: str | None = None,
    size: int = 8,
    stride: int = 4,
    fill="zero",
    diagnose: bool = True,
) -> VerifyResult:
    """Compare minicnn's ``method`` map of images x (N, C, H, W) with ``reference``.

    reference: an array or a .npy / .npz path, in any layout of the module docstring. target:
    class index, list, or "predicted". layer: Grad-CAM's layer (default: the last conv's ReLU).
    size, stride, fill: the occluder (as in mc.occlusion; Captum's Occlusion with
    sliding_window_shapes (C, size, size), strides (1, stride, stride) and baselines = fill).
    diagnose: when they disagree, test the named hypotheses of tools/diagnosis (a few dozen
    backward passes at most). Returns a VerifyResult; ``result.agree`` is max_rel_diff <= tol.
    """
    if tol <= 0:
        raise MinicnnError(f"tolerance must be positive, got {tol}")
    ref = read_map(reference, key) if isinstance(reference, (str, Path)) else np.asarray(reference)
    ours = minicnn_map(net, x, method, target, layer, size, stride, fill)
    single = None
    try:
        arranged, transposed = _arrange(ref, ours, layout, method), False
    except MinicnnError as exc:  # a map whose height and width are swapped fits no layout: try it transposed
        try:
            arranged, transposed = _arrange_transposed(ref, ours, layout, method), True
        except MinicnnError:  # one image's map for a batch (pytorch-grad-cam's guided), or the message
            arranged, transposed = _one_image(ref, ours, layout, method, exc), False
            single = arranged[0][0]  # the one map, in minicnn's layout
    arranged, name = arranged
    result = compare(ours, arranged, tol, method, name)
    result.signed = method == "saliency" and bool((arranged < 0).any())
    result.transposed, result.single = transposed, single is not None
    if transposed:  # the comparison is of the map transposed back: that is the difference's cause
        from minicnn.tools.diagnosis import Explanation

        h, w = ours.shape[-2:]
        detail = f"height and width transposed: the map is {w} x {h}, minicnn's {h} x {w}"
        result.diagnosis = [Explanation("layout", detail, result.max_rel_diff)]
    elif single is not None:
        result.diagnosis, result.closest = _one_map_for_a_batch(ours, single, tol)
    elif diagnose and not result.agree:
        result.diagnosis, result.closest = explain(net, x, method, target, layer, result)
    return result


def _one_image(ref, ours, layout, method, error):
    """_arrange of a reference that is one image's map, repeated for each image of the batch ``ours``;
    ``error`` (the message of the batch's layouts) when it is not that, or the batch is one image."""
    if len(ours) == 1:
        raise error
    try:
        arranged, name = _arrange(ref, ours[:1], layout, method)
    except MinicnnError:
        raise error from None
    return np.repeat(arranged, len(ours), axis=0), name


def _one_map_for_a_batch(ours, single, tol):
    """(diagnosis, closest) of one image's map (minicnn's layout) given for the batch ``ours``: the
    image whose map it is. pytorch-grad-cam's guided backpropagation returns one (H, W, C) map for a
    batch, image 0's (github.com/jacobgil/pytorch-grad-cam/issues/400 and /issues/530)."""
    from minicnn.tools.diagnosis import Explanation

    scale = float(np.abs(single).max())
    residuals = [float(np.abs(m - single).max() / scale) for m in ours]
    j = int(np.argmin(residuals))
    explanation = Explanation(
        "batch", f"one map given for a batch of {len(ours)} images: image {j}'s, the others not explained",
        residuals[j],
    )  # fmt: skip
    return ([explanation], None) if residuals[j] <= tol else ([], explanation)


def _arrange(ref, ours, layout, method):
    """(the reference in minicnn's layout, reduced over channels where minicnn's map has none;
    the layout it was read as)."""
    if ours.ndim == 4:
        return to_layout(ref, ours.shape[0], ours.shape[1], ours.shape[2:], layout)
    arranged, name = to_layout(ref, ours.shape[0], None, ours.shape[1:], layout)  # no channels
    return reduce_channels(arranged, method), name  # a reference with channels, reduced as Captum's are


def _arrange_transposed(ref, ours, layout, method):
    """_arrange of the reference with two neighbouring axes swapped (height and width in any of the
    layouts); the original MinicnnError when no swap fits, or when height equals width."""
    h, w = ours.shape[-2:]
    for axes in ((-1, -2), (-2, -3)):
        if h != w and ref.ndim >= -axes[1]:
            try:
                return _arrange(np.swapaxes(ref, *axes), ours, layout, method)
            except MinicnnError:
                continue
    return _arrange(ref, ours, layout, method)  # raises the original message


def explain(net, x, method, target, layer, result):
    """(explanations, closest) of tools/diagnosis for a disagreeing result (see verify)."""
    from minicnn.tools.cam import gradcam_layer
    from minicnn.tools.diagnosis import Case, diagnose
    from minicnn.tools.targets import as_batch, resolve_targets

    x = as_batch(net, x)
    targets = resolve_targets(target, net.run(x).output())
    try:  # Grad-CAM's layer, also for the hypothesis that the map is a Grad-CAM map
        name = gradcam_layer(net, layer if method == "grad_cam" else None, tuple(x.shape[1:]))
    except MinicnnError:
        name = None
    case = Case(
        net, x, method, targets, result.ours, result.reference, result.tol, name, result.signed, verifiable()
    )
    return diagnose(case)
