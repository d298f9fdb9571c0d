"""The sanity checks for saliency maps (Adebayo et al. 2018; Nie et al. 2018; Zhang et al. 2016).

Similarity measures against SciPy / scikit-image and against formulas written here; the
randomisation changes exactly the layers it names, seeded and reproducibly; step 0 similarities
are 1; the pointing game's hit rule against brute force over the disc; bad input in one line.
"""

import numpy as np
import pytest
from scipy.ndimage import uniform_filter
from support import assert_close

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.tools import sanity_similarity as sim
from minicnn.tools.sanity import randomized_networks
from minicnn.tools.sanity_methods import METHODS, all_maps, available_methods
from minicnn.tools.sanity_pointing import box_hit, class_mean_accuracy, default_tolerance, peak

# -- similarity measures ---------------------------------------------------------------------------


def maps_pair(seed=0, shape=(2, 28, 28)):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    return a, a + 0.8 * rng.standard_normal(shape)


def test_spearman_is_pearson_of_ranks():
    a, b = maps_pair()
    for ai, bi in zip(a, b):
        ra, rb = np.argsort(np.argsort(ai.ravel())), np.argsort(np.argsort(bi.ravel()))  # no ties
        assert abs(sim.spearman(ai, bi) - np.corrcoef(ra, rb)[0, 1]) < 1e-12
        ra = np.argsort(np.argsort(np.abs(ai).ravel()))
        rb = np.argsort(np.argsort(np.abs(bi).ravel()))
        assert abs(sim.similarity(ai, bi, "spearman_abs") - np.corrcoef(ra, rb)[0, 1]) < 1e-12


def naive_ssim(a, b, win=7, data_range=1.0):
    """Wang et al. 2004, eq. 13, with a uniform 7x7 window and sample covariances, averaged over the
    positions where the window fits (what scikit-image's defaults compute)."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    n = win * win
    m = [uniform_filter(v, win) for v in (a, b, a * a, b * b, a * b)]
    va, vb, cab = [(m[k] - u) * n / (n - 1) for k, u in ((2, m[0] ** 2), (3, m[1] ** 2), (4, m[0] * m[1]))]
    s = ((2 * m[0] * m[1] + c1) * (2 * cab + c2)) / ((m[0] ** 2 + m[1] ** 2 + c1) * (va + vb + c2))
    pad = win // 2
    return s[pad:-pad, pad:-pad].mean()


def test_ssim_against_the_formula():
    a, b = maps_pair(1)
    for ai, bi in zip(a, b):
        expected = naive_ssim(sim.unit_abs(ai), sim.unit_abs(bi))
        assert abs(sim.ssim(ai, bi) - expected) < 1e-10


def test_hog_correlation_against_scikit_image_and_numpy():
    from skimage.feature import hog

    a, b = maps_pair(2, (2, 40, 40))
    for ai, bi in zip(a, b):
        fa = hog(np.abs(ai) / np.abs(ai).max(), pixels_per_cell=(8, 8), cells_per_block=(3, 3))
        fb = hog(np.abs(bi) / np.abs(bi).max(), pixels_per_cell=(8, 8), cells_per_block=(3, 3))
        assert abs(sim.hog_correlation(ai, bi) - np.corrcoef(fa, fb)[0, 1]) < 1e-12


def test_identical_maps_score_one_and_constant_maps_are_handled():
    a, _ = maps_pair(3)
    for metric, values in sim.similarities(a, a).items():
        assert_close(values, 1.0, rtol=1e-12, what=metric)
    zero = np.zeros((1, 28, 28))
    assert sim.similarities(zero, zero)["spearman"][0] == 1.0
    assert sim.similarities(a[:1], zero)["spearman"][0] == 0.0


# -- the randomisation test ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gap_small(make_small_vgg):
    return make_small_vgg(seed=4, size=12, classes=3, gap=True)


@pytest.fixture(scope="module")
def images12():
    return np.random.default_rng(1).standard_normal((2, 3, 12, 12)).astype(np.float32)


def params(net):
    return {(layer.name, k): np.array(v) for layer, k, v in net.parameters()}


@pytest.mark.parametrize("cascade", [True, False])
def test_randomisation_changes_exactly_the_named_layers(gap_small, cascade):
    trained = params(gap_small)
    names = ["dense_0", "conv2d_3", "conv2d_1"]
    seen = []
    for k, (name, net) in enumerate(randomized_networks(gap_small, names, cascade, seed=7)):
        changed = {key[0] for key, v in params(net).items() if not np.array_equal(v, trained[key])}
        expected = set(names[: k + 1]) if cascade else {name}
        assert changed == expected, (k, changed)
        seen.append({key: v for key, v in params(net).items() if key[0] == name})
    assert params(gap_small).keys() == trained.keys()
    assert all(np.array_equal(v, trained[k]) for k, v in params(gap_small).items())  # original untouched
    # seeded: the same layer gets the same weights in both tests and on every run
    again = [
        {key: v for key, v in params(net).items() if key[0] == name}
        for name, net in randomized_networks(gap_small, names, not cascade, seed=7)
    ]
    for a, b in zip(seen, again):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    for seed in (8, -7):  # another seed, negative ones included, is another stream
        other = next(iter(randomized_networks(gap_small, names, cascade, seed=seed)))[1]
        assert not np.array_equal(params(other)[("dense_0", "weight")], seen[0][("dense_0", "weight")])


def test_randomization_test_result(gap_small, images12):
    methods = available_methods(gap_small)
    assert methods == [m for m in METHODS if m != "occlusion"]  # a GAP net allows CAM; occlusion on request
    res = mc.randomization_test(gap_small, images12, [0, 2], methods=methods, cascade=True, seed=0)
    steps = len(res.layers)
    assert res.layers == ["dense_0", "conv2d_3", "conv2d_2", "conv2d_1", "conv2d_0"]
    for m in methods:
        assert res.maps[m].shape == (steps + 1, 2, 12, 12)
        for metric in sim.METRICS:
            values = res.similarity[m][metric]
            assert values.shape == (steps + 1,) and values[0] == pytest.approx(1.0, abs=1e-12)
            assert_close(values, res.per_image[m][metric].mean(axis=1), rtol=1e-12)
    # step 0 is the trained network's maps, the last cascade step a fully re-initialised copy's
    assert_close(res.maps["gradient"][0], all_maps(gap_small, images12, [0, 2], ["gradient"])["gradient"])
    last = list(randomized_networks(gap_small, res.layers, True, 0))[-1][1]
    assert_close(res.maps["guided"][-1], all_maps(last, images12, [0, 2], ["guided"])["guided"])
    # randomising the class layer must change the gradient map (the network's own result)
    assert res.similarity["gradient"]["spearman"][1] < 0.99
    again = mc.randomization_test(gap_small, images12, [0, 2], methods=["smoothgrad"], cascade=True, seed=0)
    np.testing.assert_array_equal(again.maps["smoothgrad"], res.maps["smoothgrad"])
    assert "Grad-CAM" in res.table("ssim") and "conv2d_3" in res.table()


def test_independent_layers_subset(gap_small, images12):
    res = mc.randomization_test(
        gap_small, images12, 1, methods="gradient,deconvnet", cascade=False, layers=["conv2d_0", "dense_0"]
    )
    assert res.layers == ["dense_0", "conv2d_0"] and res.maps["deconvnet"].shape[0] == 3


def test_deconvnet_map_is_the_independent_reverse_network(gap_small, images12):
    ours = all_maps(gap_small, images12, np.array([1, 0]), ["deconvnet"])["deconvnet"]
    ref = mc.deconvnet(gap_small, images12, [1, 0]).astype(np.float64).sum(axis=1)
    assert_close(ours, ref, rtol=1e-12)


# -- class sensitivity, image recovery -------------------------------------------------------------


def test_class_sensitivity_and_recovery(gap_small, images12):
    cs = mc.class_sensitivity(gap_small, images12, ["gradient", "guided", "cam"], top=3)
    assert cs.classes.shape == (2, 3)
    # CAM for class c is sum_k w_ck f_k: three classes of a 3-class net give 3 pairs, computed here
    from minicnn.tools.sanity_methods import method_maps

    per = [method_maps(gap_small, images12, cs.classes[:, k], "cam") for k in range(3)]
    expected = np.mean([sim.similarities(per[a], per[b])["ssim"] for a, b in ((0, 1), (0, 2), (1, 2))])
    assert cs.similarity["cam"]["ssim"] == pytest.approx(expected, abs=1e-12)
    rec = mc.image_recovery(gap_small, images12, "predicted", ["gradient_x_input"])
    assert set(rec.similarity) == {"trained", "random"}
    assert -1 <= rec.similarity["random"]["gradient_x_input"]["spearman"] <= 1


# -- the pointing game -----------------------------------------------------------------------------


def test_box_hit_against_the_disc():
    """TorchRay's rule, by brute force: a hit when some box pixel is at squared distance < tol^2."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        x0, y0 = rng.integers(0, 30, 2)
        box = (x0, y0, x0 + rng.integers(1, 12), y0 + rng.integers(1, 12))
        point, tol = tuple(rng.integers(0, 45, 2)), float(rng.uniform(0.5, 9))
        ys, xs = np.mgrid[box[1] : box[3], box[0] : box[2]]
        brute = bool((((ys - point[0]) ** 2 + (xs - point[1]) ** 2) < tol**2).any())
        assert box_hit(point, box, tol) == brute, (point, box, tol)


def test_pointing_pieces():
    assert default_tolerance(224, 224) == 15 and default_tolerance(84, 84) == pytest.approx(5.625)
    m = np.zeros((5, 6))
    m[3, 4] = m[4, 5] = 2.0
    assert peak(m) == (3, 4)  # the first maximum in row-major order, as np.argmax
    assert class_mean_accuracy([1, 1, 0, 1], [0, 0, 1, 1]) == pytest.approx((1.0 + 0.5) / 2)


def test_pointing_game_on_shipped_canvases(gap_net):
    from minicnn.paths import WEIGHTS_DIR

    with np.load(WEIGHTS_DIR / "clutter.npz") as f:
        x = (f["images"][:6, None] / 255.0).astype(np.float32)
        boxes, labels = f["boxes"][:6], f["labels"][:6]
    res = mc.pointing_game(gap_net, x, boxes, labels, ["gradient", "cam"])
    assert set(res.accuracy) == {"gradient", "cam", "centre"}
    cams = mc.cam(gap_net, x, labels)
    expected = [box_hit(peak(c), b, res.tolerance) for c, b in zip(cams, boxes)]
    np.testing.assert_array_equal(res.hits["cam"], expected)
    assert res.accuracy["cam"] == class_mean_accuracy(expected, labels)


# -- bad input -------------------------------------------------------------------------------------


def test_bad_input(small_net, small_images, gap_small, images12):
    with pytest.raises(MinicnnError, match="unknown method 'saliency'.*gradient, gradient_x_input"):
        mc.randomization_test(gap_small, images12, 0, methods=["saliency"])
    with pytest.raises(MinicnnError, match="CAM needs a network ending in GlobalAvgPool2D"):
        mc.randomization_test(small_net, small_images, 0, methods=["cam"])
    with pytest.raises(MinicnnError, match="unknown or parameter-free layer 'relu_0'.*dense_0"):
        mc.randomization_test(gap_small, images12, 0, layers=["relu_0"])
    with pytest.raises(MinicnnError, match="target 3 out of range"):
        mc.randomization_test(gap_small, images12, 3)
    with pytest.raises(MinicnnError, match="boxes"):
        mc.pointing_game(gap_small, images12, np.zeros((3, 4)), [0, 1])


def test_data_randomization_compares_two_networks(gap_small, make_small_vgg, images12):
    other = make_small_vgg(seed=9, size=12, classes=3, gap=True)
    res = mc.data_randomization_test(gap_small, other, images12, [2, 1], methods=["guided", "grad_cam"])
    for m in ("guided", "grad_cam"):
        assert_close(res.maps[m][0], all_maps(gap_small, images12, np.array([2, 1]), [m])[m], rtol=1e-12)
        assert_close(res.maps[m][1], all_maps(other, images12, np.array([2, 1]), [m])[m], rtol=1e-12)
        expected = sim.similarities(res.maps[m][0], res.maps[m][1])
        assert all(res.similarity[m][k] == pytest.approx(expected[k].mean(), abs=1e-12) for k in sim.METRICS)
    with pytest.raises(MinicnnError, match="same layers"):
        mc.data_randomization_test(gap_small, make_small_vgg(seed=1, size=12, classes=3), images12, 0)


def test_shipped_permuted_label_model(digit_net, make_digit_images):
    """weights/mnist_vgg_permuted.h5: mnist-vgg's layers, its recipe in the metadata, and at chance
    on the true labels of the held-out digits (it memorised permuted labels, learned no digits)."""
    from minicnn.paths import WEIGHTS_DIR
    from minicnn.tools.sanity_data import PERMUTED_MODEL, PERMUTED_RECIPE

    assert PERMUTED_MODEL.stat().st_size < 1 << 20
    net = mc.load(PERMUTED_MODEL)
    assert net.names == digit_net.names
    prov = net.meta["provenance"]
    assert prov["train_accuracy_permuted_labels"] >= 0.95 and prov["seed"] == 0
    assert all(prov[k] == v for k, v in PERMUTED_RECIPE.items())
    with np.load(WEIGHTS_DIR / "mnist_heldout.npz") as f:
        x, y = (f["images"][:, None] / 255.0).astype(np.float32), f["labels"]
    accuracy = float((net.forward(x).argmax(axis=1) == y).mean())
    assert accuracy < 0.2 and accuracy == pytest.approx(prov["heldout_accuracy_true_labels"])
    trained = float((digit_net.forward(x).argmax(axis=1) == y).mean())
    assert trained > 0.9


def test_randomization_figure_layout():
    """Adebayo et al.'s fig. 2: one row per method (after the input's row), one column per step."""
    from minicnn.render.randomization import randomization_figure, unit_abs_rgb

    maps = {
        "gradient": np.random.default_rng(0).standard_normal((4, 12, 12)),
        "guided": np.zeros((4, 12, 12)),
    }
    picture = randomization_figure(np.zeros((12, 12, 3), np.uint8), maps, ["trained", "a", "b", "c"])
    assert picture.dtype == np.uint8 and picture.shape[2] == 3
    assert picture.shape[1] == 4 * 84 + 5 * 4  # four 84-px columns (12 px x 7) and the padding
    grey = unit_abs_rgb(maps["gradient"][1])
    assert grey.max() == 255 and np.array_equal(grey[..., 0], grey[..., 2])
    assert unit_abs_rgb(maps["guided"][0]).max() == 0  # an all-zero map is black, not an error
    with pytest.raises(MinicnnError, match="expected 3 maps"):
        randomization_figure(np.zeros((12, 12)), maps, ["trained", "a", "b"])


def test_every_registry_method_that_explains_a_class_is_checked(gap_small, images12):
    """The sanity checks take their names from tools/methods.py: every class-explaining method but
    saliency (the gradient's max |.|) and reconstruct (no class), registry aliases accepted, and a
    method routed through the registry gives the registry's map."""
    from minicnn.tools import methods as registry
    from minicnn.tools.sanity_methods import all_attributions, method_names

    expected = [n for n, m in registry.METHODS.items() if m.target and n not in ("saliency", "reconstruct")]
    assert list(METHODS) == expected and {"lrp-epsilon", "deeplift", "integrated-gradients"} <= set(METHODS)
    assert method_names("gradcam,integrated_gradients,guided_backprop") == [
        "grad_cam", "integrated-gradients", "guided",
    ]  # fmt: skip
    with pytest.raises(MinicnnError, match="unknown method 'saliency'"):
        method_names(["saliency"])
    got = all_attributions(gap_small, images12, [0, 2], ["lrp-epsilon", "occlusion"])
    assert_close(got["lrp-epsilon"], registry.compute("lrp-epsilon", gap_small, images12, [0, 2]), 1e-12)
    occ = registry.compute("occlusion", gap_small, images12, [0, 2])
    assert got["occlusion"].shape == (2, 1, 12, 12) and np.array_equal(got["occlusion"][:, 0], occ)
    res = mc.randomization_test(gap_small, images12, [0, 2], ["lrp-epsilon", "deeplift"], layers=["dense_0"])
    assert res.similarity["lrp-epsilon"]["spearman"][1] < 0.99  # a new class layer changes LRP's map
