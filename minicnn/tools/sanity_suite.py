"""Every sanity check on one network, summarised as a method x test table beside the papers' claims.

    findings = run_checks(net, x, targets, methods, tests=TESTS, pointing=..., permuted=...)
    print(findings.table())

Each column is one number per method (mean over images), compared under one protocol
(sanity_protocols.py; named above the table):

    cascade      Spearman rank correlation (abs) of the maps before and after re-initialising every
                 learned layer from the top down (Adebayo et al. 2018, sec. 3); low = the map
                 depends on the learned weights
    cascade-ssim the same with SSIM
    independent  the same correlation, each layer alone re-initialised, averaged over the layers
    data         the correlation with the map of the same architecture trained on permuted labels
                 (Adebayo et al. 2018, sec. 4)
    class        the correlation between the maps of the image's top classes (Nie et al. 2018);
                 high = the map ignores the class

In cascade, independent, data and class, where more than TIED_SHARE of the pixels are zero in
either map the cell holds the correlation over the other pixels (marked "fg";
sanity_protocols.verdict): a block of pixels tied at the lowest rank makes unrelated maps look alike.
    recovery     SSIM of the map with the input image, trained network / random network (Mahendran
                 & Vedaldi 2016; Nie et al. 2018); as high on the random one = it shows the image
                 (minicnn's SSIM whatever the protocol: the protocols compare two maps, not a map
                 and an image)
    pointing     pointing-game accuracy (Zhang et al. 2016, scored as TorchRay)
    random-logit the correlation of the map of the explained class with that of a random other class
                 (Sixt et al. 2020); high = the map ignores the class
    smooth-mprt  the cascade's correlation, bottom-up, on maps averaged over SUITE_SMOOTH_SAMPLES noisy
                 copies of the input (Hedstrom et al. 2024, sec. 4.1; they take 50)
    efficient-mprt  the relative rise in the map's histogram entropy once every learned layer is
                 re-initialised (Hedstrom et al. 2024, sec. 4.2); above 0 = the map turns to noise

A method "changes" in a randomisation column when its correlation falls below CHANGED (our
threshold, not the paper's: the paper judges by eye and by these curves).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.tools.sanity import check_layers, randomization_test
from minicnn.tools.sanity_checks import class_sensitivity, image_recovery
from minicnn.tools.sanity_data import data_randomization_test
from minicnn.tools.sanity_methods import METHODS, has_cam
from minicnn.tools.sanity_mprt import efficient_mprt, random_logit, smooth_mprt
from minicnn.tools.sanity_pointing import TORCHRAY_VGG16_VOC07, pointing_game
from minicnn.tools.sanity_protocols import DEFAULT_PROTOCOL, TIED_SHARE, check_protocol, verdict

TESTS = (
    "cascade", "independent", "data", "class", "recovery", "pointing", "random_logit", "smooth_mprt",
    "efficient_mprt",
)  # fmt: skip
CHANGED = 0.5
SUITE_SMOOTH_SAMPLES = 8  # smooth MPRT's average in the suite: every step costs this many passes

# the papers' qualitative findings, per test
CLAIMS = {
    "cascade": "Adebayo et al. 2018, fig. 2: gradient, SmoothGrad and Grad-CAM change as layers are "
    "randomised; guided backprop (and guided Grad-CAM) barely change; gradient x input stays close to "
    "the input",
    "independent": "Adebayo et al. 2018, fig. 4: the same, one layer at a time",
    "data": "Adebayo et al. 2018, fig. 5: maps of a network trained on permuted labels differ from the "
    "trained one's for gradient and Grad-CAM; guided backprop's stay alike",
    "class": "Nie et al. 2018, sec. 5: guided backprop and the DeconvNet are class-insensitive (same "
    "map whatever the class); the gradient is not",
    "recovery": "Mahendran & Vedaldi 2016; Nie et al. 2018, sec. 4: DeconvNet and guided backprop "
    "reconstruct the image, even on a random network",
    "random_logit": "Sixt et al. 2020, sec. 5: modified backpropagation methods whose maps stop depending on "
    "the later layers give nearly the same map for a random other class; the gradient does not",
    "smooth_mprt": "Hedstrom et al. 2024, sec. 4.1: noise in gradient-like maps lowers MPRT's similarity by "
    "itself; averaging over noisy inputs first removes that effect",
    "efficient_mprt": "Hedstrom et al. 2024, sec. 4.2: a faithful map grows in complexity (entropy) when the "
    "model is randomised",
    "pointing": "TorchRay VGG16 on VOC07: Grad-CAM 86.6% > gradient 76.3% ~ guided 75.9% > centre "
    "69.6% > DeconvNet 67.5%",
}


@dataclass
class Findings:
    """results: test -> the tool's result object; rows: method -> {column: value}; cells: (method,
    column) -> Cell for the columns a verdict reads; notes: tests skipped and why."""

    methods: list
    results: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    protocol: str = DEFAULT_PROTOCOL
    cells: dict = field(default_factory=dict)

    def columns(self) -> list[str]:
        seen = []
        for row in self.rows.values():
            seen += [c for c in row if c not in seen]
        return seen

    def table(self) -> str:
        """Method x test, one number per cell ('-' where the test did not run for the method)."""
        cols = self.columns()
        head = f"{'method':<18}" + "".join(f"{c:>15}" for c in cols)
        lines = [f"protocol: {self.protocol}", head, "-" * len(head)]
        for m, row in self.rows.items():
            text = [_cell(row.get(c)) + (" fg" if self._foreground(m, c) else "") for c in cols]
            lines.append(f"{(METHODS[m][0] if m in METHODS else m):<18}" + "".join(f"{t:>15}" for t in text))
        if any(cell.measure == "spearman_fg" for cell in self.cells.values()):
            lines.append(
                f"fg: more than {TIED_SHARE:.0%} of the pixels are zero in either map; the number is the "
                "Spearman correlation (abs) over the pixels non-zero in both"
            )
        return "\n".join(lines)

    def _foreground(self, method: str, column: str) -> bool:
        cell = self.cells.get((method, column))
        return cell is not None and cell.measure == "spearman_fg"

    def verdicts(self) -> list[str]:
        """One sentence per randomisation column: which methods change (below CHANGED), which do not."""
        out = []
        for col in ("cascade", "independent", "data", "smooth-mprt"):
            cells = {m: c for (m, c2), c in self.cells.items() if c2 == col}
            if not cells:
                continue
            changed = [
                METHODS[m][0] + (" (fg)" if c.foreground else "") for m, c in cells.items() if c.changed
            ]
            kept = [
                METHODS[m][0] + (" (fg)" if c.foreground else "") for m, c in cells.items() if not c.changed
            ]
            out.append(
                f"{col}: changed (rank corr. < {CHANGED}, protocol {self.protocol}): "
                f"{', '.join(changed) or 'none'}; stayed alike: {', '.join(kept) or 'none'}"
            )
        for col in ("class", "random-logit"):
            cells = {m: c for (m, c2), c in self.cells.items() if c2 == col}
            if cells:
                insensitive = [METHODS[m][0] for m, c in cells.items() if not c.changed]
                out.append(f"{col}: the same map whatever the class (rank corr. >= {CHANGED}): "
                           f"{', '.join(insensitive) or 'none'}")  # fmt: skip
        if "efficient_mprt" in self.results:
            mean = self.results["efficient_mprt"].mean
            rises = [METHODS[m][0] for m, v in mean.items() if v > 0]
            out.append(
                f"efficient MPRT: entropy rises on the random network for {', '.join(rises) or 'none'}"
            )
        if "pointing" in self.results:
            res = self.results["pointing"]
            order = " > ".join(
                f"{METHODS[m][0] if m in METHODS else m} {res.accuracy[m]:.0%}" for m in res.ranking()
            )
            out.append(f"pointing game ranking here: {order}")
            a = res.accuracy
            if set(TORCHRAY_VGG16_VOC07) <= set(a):
                # TorchRay: Grad-CAM > gradient ~ guided > centre > DeconvNet (gradient, guided unordered)
                holds = (
                    a["grad_cam"] > max(a["gradient"], a["guided"])
                    and min(a["gradient"], a["guided"]) > a["centre"] > a["deconvnet"]
                )
                out.append(
                    "TorchRay's ranking (Grad-CAM > gradient ~ guided > centre > DeconvNet) "
                    + ("holds here" if holds else "does not hold here")
                )
        return out


@dataclass
class Cell:
    """One verdict: the protocol, the measure read (spearman_abs, or spearman_fg where the tied share
    exceeds TIED_SHARE), its value, the tied share and whether it is below CHANGED."""

    protocol: str
    measure: str
    value: float
    tied: float
    changed: bool

    @property
    def foreground(self) -> bool:
        return self.measure == "spearman_fg"


def judge(values: dict, protocol: str) -> Cell:
    """The Cell of one method and test from its mean measures {name: float}."""
    measure, value, word = verdict(values, CHANGED)
    return Cell(protocol, measure, value, float(values["tied"]), word == "changed")


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return f"{v:.3f}"


def run_checks(
    net,
    x,
    targets,
    methods,
    tests=TESTS,
    seed: int = 0,
    pointing=None,
    permuted=None,
    progress: bool = False,
    class_top: int = 3,
    layers=None,
    protocol: str = DEFAULT_PROTOCOL,
    order: str = "top-down",
) -> Findings:
    """Run the chosen tests and fill the method x test table.

    net, x (N, C, H, W), targets (N,): the network, images and explained classes.
    pointing: None (skip) or (network, canvases (M, C, H, W), boxes (M, 4), labels (M,)).
    permuted: None (skip the data test) or the same architecture trained on permuted labels.
    progress: tqdm bars over the tests and the randomisation steps.
    layers: the learned layers the randomisation tests re-initialise (default: all, top first).
    protocol: how maps are compared (sanity_protocols.PROTOCOLS), named in the table.
    order: the cascade's and the independent test's order, "top-down" (the paper's) or "bottom-up".
    """
    from tqdm.auto import tqdm

    protocol = check_protocol(protocol)

    unknown = [t for t in tests if t not in TESTS]
    if unknown:
        raise MinicnnError(f"unknown test {unknown[0]!r}; expected one of: {', '.join(TESTS)}")
    f = Findings(list(methods), rows={m: {} for m in methods}, protocol=protocol)

    def fill(column: str, values: dict, method: str) -> None:
        cell = judge(values, protocol)
        f.cells[(method, column)] = cell
        f.rows[method][column] = cell.value

    for test in tqdm(list(tests), desc="sanity checks", unit="test", disable=not progress, leave=False):
        if test in ("cascade", "independent"):
            res = randomization_test(
                net,
                x,
                targets,
                methods,
                cascade=test == "cascade",
                seed=seed,
                layers=layers,
                progress=progress,
                protocol=protocol,
                order=order,
            )
            f.results[test] = res
            for m in methods:
                if test == "cascade":
                    fill("cascade", {k: float(v[-1]) for k, v in res.similarity[m].items()}, m)
                    if "ssim" in res.similarity[m]:
                        f.rows[m]["cascade-ssim"] = float(res.similarity[m]["ssim"][-1])
                else:
                    fill("independent", {k: float(np.mean(v[1:])) for k, v in res.similarity[m].items()}, m)
        elif test == "data":
            if permuted is None:
                f.notes.append("data: skipped (no network trained on permuted labels for this model)")
                continue
            res = data_randomization_test(net, permuted, x, targets, methods, seed=seed, protocol=protocol)
            f.results[test] = res
            for m in methods:
                fill("data", res.similarity[m], m)
        elif test == "class":
            res = class_sensitivity(
                net, x, methods, top=min(class_top, _classes(net, x)), seed=seed, protocol=protocol
            )
            f.results[test] = res
            for m in methods:
                fill("class", res.similarity[m], m)
        elif test == "recovery":
            res = image_recovery(net, x, targets, methods, seed=seed)
            f.results[test] = res
            for m in methods:
                trained, random = (res.similarity[k][m]["ssim"] for k in ("trained", "random"))
                f.rows[m]["recovery"] = f"{trained:.2f} / {random:.2f}"
        elif test == "random_logit":
            res = random_logit(net, x, targets, methods, seed=seed, protocol=protocol)
            f.results[test] = res
            for m in methods:
                fill("random-logit", res.similarity[m], m)
        elif test == "smooth_mprt":
            order = check_layers(net, layers, "bottom-up")
            res = smooth_mprt(net, x, targets, methods, samples=SUITE_SMOOTH_SAMPLES, seed=seed, layers=order,
                              protocol=protocol)  # fmt: skip
            f.results[test] = res
            for m in methods:
                fill("smooth-mprt", {k: float(v[-1]) for k, v in res.similarity[m].items()}, m)
        elif test == "efficient_mprt":
            res = efficient_mprt(net, x, targets, methods, seed=seed)
            f.results[test] = res
            for m in methods:
                f.rows[m]["efficient-mprt"] = res.mean[m]
        elif test == "pointing":
            if pointing is None:
                f.notes.append("pointing: skipped (no canvases with boxes for this model)")
                continue
            pnet, canvases, boxes, labels = pointing
            pmethods = [m for m in methods if m != "cam"] + (["cam"] if has_cam(pnet) else [])
            res = pointing_game(pnet, canvases, boxes, labels, pmethods, seed=seed)
            f.results[test] = res
            for m in pmethods:
                f.rows.setdefault(m, {})["pointing"] = f"{res.accuracy[m]:.0%}"
            f.rows["centre"] = {"pointing": f"{res.accuracy['centre']:.0%}"}
    return f


def _classes(net, x) -> int:
    return int(net.shapes(tuple(x.shape[1:]))[-1][0])
