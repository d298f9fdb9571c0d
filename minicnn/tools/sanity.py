"""The model parameter randomisation test (Adebayo et al. 2018, "Sanity Checks for Saliency Maps",
sec. 3).

If a saliency map explains what the network learned, destroying what it learned must change the
map. The test re-initialises the learned layers from the top (the class layer) down and compares
each method's maps on the randomised network with its maps on the trained one:

    cascading    step k: the top k layers re-initialised, cumulatively (the paper's fig. 2)
    independent  step k: only the k-th layer from the top re-initialised, the others trained

    res = randomization_test(net, x, "predicted", methods=["gradient", "guided"], cascade=True)
    res.layers                          # names re-initialised, in order (top first)
    res.maps["guided"]                  # (steps + 1, N, H, W); step 0 = the trained network
    res.similarity["guided"]["ssim"]    # (steps + 1,), mean over images; step 0 = 1

``order="bottom-up"`` walks the layers from the input up instead (Quantus' "bottom_up"; Hedstrom et
al. 2024 use it for their smooth and efficient MPRT). ``protocol`` names how two maps are compared
(sanity_protocols.py: "minicnn", "adebayo" for the authors' code, "quantus" for Quantus' defaults).

The paper's finding: gradient and its variants change as layers are randomised; guided
backpropagation (and, Nie et al. 2018 add, the DeconvNet) barely do: they recover the image
rather than explain the network. The explained class is the trained network's (fixed over steps).

Re-initialisation uses each layer's own initialiser (He normal weights, zero bias) with a generator
seeded by (seed, the layer's position) (``layer_rng``), so a layer gets the same random weights in
both tests and every run; the network passed in is never modified (the steps run on a copy).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from minicnn.backend import on_device_of
from minicnn.errors import MinicnnError
from minicnn.tools.sanity_methods import METHODS, all_attributions, check_methods
from minicnn.tools.sanity_protocols import DEFAULT_PROTOCOL, check_protocol, compare, measures
from minicnn.tools.sanity_similarity import METRIC_TITLES
from minicnn.tools.targets import as_batch, forward_record, resolve_targets

ORDERS = ("top-down", "bottom-up")
TITLES = {
    **METRIC_TITLES,
    "spearman_fg": "Spearman rank correlation (abs) on the pixels non-zero in both maps",
    "tied": "share of pixels zero in either map",
}


@dataclass
class RandomizationResult:
    """layers: names re-initialised, in the order of ``order`` (step k re-initialised layers[k - 1],
    and in the cascade every layer before it); maps[method]: (steps + 1, N, H, W) float64 signed maps
    (channels summed); similarity[method][measure]: (steps + 1,) mean over images of the comparison
    with step 0 under ``protocol`` (``sanity_protocols.measures``); per_image[method][measure]:
    (steps + 1, N); targets: (N,) classes explained at every step."""

    layers: list
    methods: list
    cascade: bool
    seed: int
    targets: np.ndarray
    maps: dict = field(repr=False)
    similarity: dict = field(default_factory=dict)
    per_image: dict = field(default_factory=dict, repr=False)
    protocol: str = DEFAULT_PROTOCOL
    order: str = "top-down"

    def table(self, metric: str = "spearman_abs") -> str:
        """The similarity with the trained network's maps, one row per method, one column per step."""
        kind = "cascading" if self.cascade else "independent"
        width = max(12, *(len(s) + 2 for s in self.layers))
        head = f"{'method':<18}" + "".join(f"{s:>{width}}" for s in ["trained", *self.layers])
        lines = [
            f"{kind} randomisation, {self.order} (Adebayo et al. 2018): {TITLES[metric]} with the trained "
            f"maps; protocol {self.protocol}",
            head,
            "-" * len(head),
        ]
        for m in self.methods:
            lines.append(
                f"{METHODS[m][0]:<18}" + "".join(f"{v:>{width}.3f}" for v in self.similarity[m][metric])
            )
        return "\n".join(lines)


def learned_layers(net) -> list[str]:
    """Names of the layers with parameters, top (output side) first: the randomisation order."""
    return [layer.name for layer in reversed(net.layers) if layer.has_params]


def check_order(order: str) -> str:
    """ "top-down" or "bottom-up", checked (one MinicnnError otherwise)."""
    if order not in ORDERS:
        raise MinicnnError(f"unknown order {order!r}; expected one of: {', '.join(ORDERS)}")
    return order


def check_layers(net, layers, order: str = "top-down") -> list[str]:
    """``layers`` (None: every learned layer) checked against the network, kept in top-first order
    (bottom-first with ``order="bottom-up"``)."""
    valid = learned_layers(net)
    if check_order(order) == "bottom-up":
        valid = valid[::-1]
    if layers is None:
        return valid
    if isinstance(layers, str):
        layers = [s.strip() for s in layers.split(",") if s.strip()]
    for name in layers:
        if name not in valid:
            raise MinicnnError(
                f"unknown or parameter-free layer {name!r}; expected one of: {', '.join(valid)}"
            )
    if not layers:
        raise MinicnnError(f"expected at least one layer; choose from: {', '.join(valid)}")
    return [name for name in valid if name in set(layers)]


def layer_rng(seed: int, position: int) -> np.random.Generator:
    """The generator of the layer at ``position`` for ``seed`` (any int, negative ones included):
    PCG64 from SeedSequence(|seed|, spawn_key=(position, seed < 0)), one stream per layer and seed."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise MinicnnError(f"seed must be an integer, got {seed!r}")
    return np.random.default_rng(np.random.SeedSequence(abs(int(seed)), spawn_key=(position, int(seed < 0))))


def reinitialize(net, name: str, seed: int) -> None:
    """Re-initialise layer ``name`` of ``net`` in place with its own initialiser, on the network's
    device, from ``layer_rng(seed, position of the layer)``."""
    layer = net[name]
    old = dict(layer.params)
    layer.init_params(layer_rng(seed, net.index(name)), net.dtype)
    for key, value in layer.params.items():
        setattr(layer, key, on_device_of(value, old[key]))


def _restore(net, trained, name: str) -> None:
    """Put the trained parameters of layer ``name`` back (the independent test's previous step)."""
    for key, value in trained[name].params.items():
        setattr(net[name], key, value.copy())


def working_copy(net):
    """A copy of ``net`` whose layers can be changed freely (the last forward record is not copied)."""
    return copy.deepcopy(net, memo={id(net.last): None})


def randomized_networks(net, layers, cascade: bool = True, seed: int = 0):
    """Yield (name, network) for each step: the network with ``name`` re-initialised (and, when
    cascading, every layer before it in ``layers``). One working copy is changed step by step, so
    use each network before asking for the next."""
    work = working_copy(net)
    previous = None
    for name in layers:
        if not cascade and previous is not None:
            _restore(work, net, previous)
        reinitialize(work, name, seed)
        previous = name
        yield name, work


def randomization_test(
    net,
    x,
    target="predicted",
    methods=("gradient", "guided"),
    cascade: bool = True,
    seed: int = 0,
    layers=None,
    record=None,
    progress: bool = False,
    protocol: str = DEFAULT_PROTOCOL,
    order: str = "top-down",
) -> RandomizationResult:
    """Run the cascading (``cascade=True``) or independent model parameter randomisation test.

    Args:
        net: a Sequential ending in class scores. x: (N, C, H, W) or (C, H, W) in network-input space.
        target: class index, list of N indices or "predicted" (resolved on the trained network).
        methods: names from METHODS (``sanity_methods.available_methods(net)`` lists this
            network's), or one comma-separated string.
        seed: seeds the re-initialisation and SmoothGrad's noise.
        layers: the learned layers to re-initialise (default: all, in ``order``).
        protocol: how maps are compared (``sanity_protocols.PROTOCOLS``).
        order: "top-down" (the paper's) or "bottom-up" (from the input layer up).
        record: a PassRecord of the trained network's forward pass over x (reused).
        progress: a tqdm bar over the steps.

    Returns:
        a RandomizationResult; steps = len(res.layers).
    """
    from tqdm.auto import tqdm

    methods = check_methods(net, methods)
    protocol = check_protocol(protocol)
    names = check_layers(net, layers, order)
    x = as_batch(net, x)
    rec = forward_record(net, x, record)
    targets = resolve_targets(target, rec.output())
    trained = all_attributions(net, x, targets, methods, seed, rec)
    maps = {m: [a.sum(axis=1)] for m, a in trained.items()}
    per = {m: [compare(a, a, protocol)] for m, a in trained.items()}
    bar = tqdm(
        randomized_networks(net, names, cascade, seed),
        total=len(names),
        desc="randomisation " + ("cascade" if cascade else "independent"),
        unit="layer",
        disable=not progress,
        leave=False,
    )
    for _name, randomized in bar:
        for m, a in all_attributions(randomized, x, targets, methods, seed).items():
            maps[m].append(a.sum(axis=1))
            per[m].append(compare(trained[m], a, protocol))
    return gathered(names, methods, cascade, seed, targets, maps, per, protocol, order)


def gathered(names, methods, cascade, seed, targets, maps, per, protocol, order) -> RandomizationResult:
    """A RandomizationResult from one walk over the randomised networks: ``maps[m]``, a list of
    (N, H, W) maps (trained first, then one per step), and ``per[m]``, the matching list of
    {measure: (N,) similarity to the trained map}; the similarity is the mean over images."""
    stacked = {m: np.stack(v) for m, v in maps.items()}
    res = RandomizationResult(names, methods, cascade, seed, targets, stacked, protocol=protocol, order=order)
    for m in methods:
        res.per_image[m] = {k: np.stack([p[k] for p in per[m]]) for k in measures(protocol)}
        res.similarity[m] = {k: v.mean(axis=1) for k, v in res.per_image[m].items()}
    return res
