"""Every attribution method minicnn has, in one table: its name, paper, map and claims.

The sanity checks, ``verify``, ``attribute`` and the equivalence suite name methods; this module is
the one place that says what each name means. A ``Method`` records:

    name          the canonical name (the CLI's ``--method`` value)
    title, paper  for tables and reports
    compute       fn(net, x, target, record=None, **options) -> the map (see ``shape``)
    shape         "NCHW": one value per input entry; "NHW": one value per pixel
    signed        whether the map takes both signs (False: >= 0 wherever the paper's assumptions hold)
    completeness  what the paper claims the map sums to, per image, or None for no claim:
                  "F(x) - F(baseline)" (Integrated Gradients, DeepLIFT), "F(x)" (LRP's
                  conservation: exact only without biases and with epsilon -> 0), "1" (excitation
                  backprop's probabilities)
    rule          the backward rule it uses ("gradient", "guided", "deconvnet", an LRP rule...)
    options       keyword options of ``compute`` and their defaults
    target        whether the map is of a class score (False: of a layer's strongest unit)

``compute`` takes x as an (N, C, H, W) batch of the network's dtype (or one (C, H, W) image), target
as a class index, N indices or "predicted", and record: a PassRecord of a full forward pass over x
already run by the caller (reused where the method starts from the clean forward pass).

Names are looked up by ``get``: a canonical name, an alias that was accepted before the registry
("gradcam"), or either spelling with "-" and "_" exchanged ("grad-cam", "integrated_gradients").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from minicnn.errors import MinicnnError


@dataclass(frozen=True)
class Method:
    """One attribution method (see the module docstring for the fields)."""

    name: str
    title: str
    paper: str
    compute: Callable
    shape: str
    signed: bool
    completeness: str | None
    rule: str
    options: dict = field(default_factory=dict)
    aliases: tuple = ()
    target: bool = True
    requires: Callable | None = None  # fn(net) raising MinicnnError where the network does not allow it

    @property
    def complete(self) -> bool:
        """Whether the paper claims the map sums to a score difference (``completeness``)."""
        return self.completeness is not None

    def describe(self) -> str:
        """The title and the paper, as "Title (paper)", for reports."""
        return f"{self.title} ({self.paper})"

    def check(self, net) -> None:
        """Raise one MinicnnError where ``net`` does not allow this method (CAM without a GAP head)."""
        if self.requires is not None:
            self.requires(net)

    def settings(self, given: dict | None = None) -> dict:
        """The options with defaults filled in; an unknown option is one MinicnnError naming the known."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise MinicnnError(f"method {self.name} has no option {unknown[0]!r} (its options: {known})")
        return {**self.options, **given}

    def __call__(self, net, x, target="predicted", record=None, **options):
        """The map: ``compute`` with the options checked and their defaults filled in."""
        return self.compute(net, x, target, record=record, **self.settings(options))


# -- the adapters: each method's tool behind one signature ---------------------------------------
# Imports are inside the functions: the table is read by the CLI to build its choices, before any
# layer, kernel or framework is loaded.


def _saliency(net, x, target, record=None, times_input=False, samples=0, noise=0.15, seed=0):
    from minicnn.tools.saliency import saliency

    record = record if not samples else None  # SmoothGrad runs its own noisy passes
    return saliency(net, x, target, times_input=times_input, samples=samples, noise=noise, seed=seed,
                    record=record, progress=False)  # fmt: skip


def _gradient(net, x, target, record=None):
    from minicnn.tools.saliency import saliency

    return saliency(net, x, target, signed=True, record=record)


def _gradient_x_input(net, x, target, record=None):
    from minicnn.tools.saliency import saliency

    return saliency(net, x, target, signed=True, times_input=True, record=record)


def _smoothgrad(net, x, target, record=None, samples=50, noise=0.15, seed=0):
    from minicnn.tools.saliency import saliency

    return saliency(net, x, target, signed=True, samples=samples, noise=noise, seed=seed, progress=False)


def _guided(net, x, target, record=None):
    from minicnn.tools.targets import as_batch, forward_record, one_hot, resolve_targets

    x = as_batch(net, x)
    rec = forward_record(net, x, record, keep="input-gradient")  # scores and the guided signal only
    scores = rec.output()
    dy = one_hot(resolve_targets(target, scores), scores)
    return rec.backward(dy, mode="guided", release=record is None)  # a caller's record stays whole


def _deconvnet(net, x, target, record=None):
    from minicnn.tools.deconvnet import deconvnet

    return deconvnet(net, x, target, record=record)


def _grad_cam(net, x, target, record=None, layer=None):
    from minicnn.tools.cam import grad_cam

    return grad_cam(net, x, target, layer=layer, record=record)


def _cam(net, x, target, record=None):
    from minicnn.tools.cam import cam

    return cam(net, x, target, record=record)


def _cam_requires(net) -> None:
    from minicnn.tools.cam import _cam_head

    _cam_head(net)  # its error says what CAM needs and suggests grad_cam


def _occlusion(net, x, target, record=None, size=8, stride=4, fill="grey"):
    from minicnn.tools.occlusion import occlusion

    return occlusion(net, x, target, size=size, stride=stride, fill=fill, progress=False,
                     record=record).attribution  # fmt: skip


def _reconstruct(net, x, target, record=None, layer=None, mode="deconvnet"):
    from minicnn.tools.reconstruct import reconstruct

    if layer is None:
        raise MinicnnError("method reconstruct needs a layer (the option layer=NAME)")
    return reconstruct(net, x, layer, mode=mode, record=record)


def _integrated_gradients(net, x, target, record=None, baseline=0.0, steps=50, method="gausslegendre",
                          batch_size=64):  # fmt: skip
    from minicnn.tools.integrated_gradients import integrated_gradients

    return integrated_gradients(net, x, target, baseline=baseline, steps=steps, method=method,
                                batch_size=batch_size, record=record)  # fmt: skip


def _excitation(net, x, target, record=None, layer=None):
    from minicnn.tools.excitation import excitation_backprop

    return excitation_backprop(net, x, target, layer=layer, record=record)


def _contrastive_excitation(net, x, target, record=None, layer=None):
    from minicnn.tools.excitation import excitation_backprop

    return excitation_backprop(net, x, target, layer=layer, contrastive=True, record=record)


def _guided_grad_cam(net, x, target, record=None, layer=None, upsample="bilinear"):
    from minicnn.tools.guided_gradcam import guided_grad_cam

    return guided_grad_cam(net, x, target, layer=layer, upsample=upsample, record=record)


def _lrp_epsilon(net, x, target, record=None, epsilon=1e-6):
    from minicnn.rules import Epsilon
    from minicnn.tools.lrp import lrp

    return lrp(net, x, target, composite=Epsilon(epsilon), record=record)


def _lrp(composite: str | None):
    """The adapter of one LRP variant: ``mc.lrp`` (tools/lrp.py) with the composite of that name
    (rules.COMPOSITES; None: the ``composite`` option)."""

    def compute(net, x, target, record=None, **options):
        from minicnn.tools.lrp import lrp

        chosen = options["composite"] if composite is None else composite
        return lrp(net, x, target, composite=chosen, record=record)

    return compute


def _deeplift(net, x, target, record=None, baseline=0.0):
    from minicnn.tools.deeplift import deeplift

    return deeplift(net, x, target, baseline=baseline, record=record)


_TABLE = (
    Method("saliency", "Saliency", "Simonyan et al. 2013", _saliency, "NHW", False, None, "gradient",
           {"times_input": False, "samples": 0, "noise": 0.15, "seed": 0}),
    Method("gradient", "Gradient", "Simonyan et al. 2013", _gradient, "NCHW", True, None, "gradient"),
    Method("gradient_x_input", "Gradient x input", "Shrikumar et al. 2016", _gradient_x_input, "NCHW",
           True, None, "gradient", aliases=("input_x_gradient",)),
    Method("smoothgrad", "SmoothGrad", "Smilkov et al. 2017", _smoothgrad, "NCHW", True, None, "gradient",
           {"samples": 50, "noise": 0.15, "seed": 0}),
    Method("guided", "Guided backprop", "Springenberg et al. 2015", _guided, "NCHW", True, None, "guided",
           aliases=("guided_backprop",)),
    Method("deconvnet", "DeconvNet", "Zeiler & Fergus 2013", _deconvnet, "NCHW", True, None, "deconvnet"),
    Method("grad_cam", "Grad-CAM", "Selvaraju et al. 2017", _grad_cam, "NHW", False, None, "gradient",
           {"layer": None}, aliases=("gradcam",)),
    Method("cam", "CAM", "Zhou et al. 2016", _cam, "NHW", True, None, "none (the class weights times the "
           "feature maps)", requires=_cam_requires),
    Method("occlusion", "Occlusion", "Zeiler & Fergus 2013", _occlusion, "NHW", True, None,
           "none (score drop under an occluder)", {"size": 8, "stride": 4, "fill": "grey"}),
    Method("reconstruct", "Projection of a unit", "Zeiler & Fergus 2013", _reconstruct, "NCHW", True, None,
           "the mode option", {"layer": None, "mode": "deconvnet"}, target=False),
    Method("integrated-gradients", "Integrated Gradients", "Sundararajan et al. 2017", _integrated_gradients,
           "NCHW", True, "F(x) - F(baseline)", "gradient",
           {"baseline": 0.0, "steps": 50, "method": "gausslegendre", "batch_size": 64}, aliases=("ig",)),
    Method("excitation", "Excitation backprop", "Zhang et al. 2016", _excitation, "NCHW", False, "1",
           "excitation (winning probabilities through w+)", {"layer": None},
           aliases=("excitation_backprop", "excitation-backprop")),
    Method("contrastive-excitation", "Contrastive excitation backprop", "Zhang et al. 2016",
           _contrastive_excitation, "NCHW", True, "0", "excitation (target minus its dual unit)",
           {"layer": None}),
    Method("guided-grad-cam", "Guided Grad-CAM", "Selvaraju et al. 2017", _guided_grad_cam, "NCHW", True,
           None, "guided x gradient", {"layer": None, "upsample": "bilinear"}, aliases=("guided_gradcam",)),
    Method("lrp-epsilon", "LRP-epsilon", "Bach et al. 2015", _lrp_epsilon, "NCHW", True, "F(x)",
           "lrp epsilon", {"epsilon": 1e-6}),
    Method("lrp-zplus", "LRP-z+", "Montavon et al. 2017", _lrp("zplus"), "NCHW", False, "F(x)", "lrp z+"),
    Method("lrp-alpha1beta0", "LRP-alpha1-beta0", "Bach et al. 2015", _lrp("alpha1beta0"), "NCHW", False,
           "F(x)", "lrp alpha1-beta0"),
    Method("lrp-composite", "LRP composite", "Kohlbrenner et al. 2020", _lrp(None), "NCHW", True,
           "F(x)", "lrp, a rule per layer", {"composite": "epsilon-plus-flat"}),
    Method("deeplift", "DeepLIFT (Rescale)", "Shrikumar et al. 2017", _deeplift, "NCHW", True,
           "F(x) - F(baseline)", "deeplift rescale", {"baseline": 0.0}),
)  # fmt: skip

#: canonical name -> Method, in the order tables list them
METHODS = {m.name: m for m in _TABLE}
#: canonical names, in table order
NAMES = tuple(METHODS)
#: every other accepted name -> its canonical name
ALIASES = {alias: m.name for m in _TABLE for alias in m.aliases}


def _spellings(name: str) -> tuple[str, str]:
    return name.replace("_", "-"), name.replace("-", "_")


def canonical(name) -> str:
    """The canonical name of ``name`` (an alias, or "-" and "_" exchanged); one MinicnnError naming
    the methods when it is none."""
    if isinstance(name, str):
        for spelling in (name, *_spellings(name)):
            if spelling in METHODS:
                return spelling
            if spelling in ALIASES:
                return ALIASES[spelling]
    raise MinicnnError(f"unknown method {name!r}; expected one of: {', '.join(NAMES)}")


def get(name) -> Method:
    """The Method of ``name`` (any accepted spelling; see ``canonical``)."""
    return METHODS[canonical(name)]


def choices(names=NAMES) -> tuple[str, ...]:
    """``names`` and their aliases: what a command line accepts for them (e.g. argparse choices)."""
    return tuple(names) + tuple(a for a, n in ALIASES.items() if n in names)


def available(net, names=NAMES) -> list[str]:
    """The canonical ``names`` that ``net`` allows (CAM only with a global-average-pooling head)."""
    out = []
    for name in names:
        try:
            get(name).check(net)
        except MinicnnError:
            continue
        out.append(canonical(name))
    return out


def compute(name, net, x, target="predicted", record=None, **options):
    """The map of method ``name``: ``get(name)(net, x, target, record=record, **options)``."""
    return get(name)(net, x, target, record=record, **options)
