"""The comparison protocols of the sanity checks (minicnn/tools/sanity_protocols.py).

"adebayo" against Adebayo et al.'s formulas written out here (the saliency package's grayscale and
diverging scaling with a hand-made percentile, SSIM with a hand-built 13-tap Gaussian and symmetric
padding, ranks by scipy.stats.rankdata); "quantus" against Quantus itself on the same maps; the tie
rule on maps built to fool a rank correlation; the shipped model's gradient reads "changed".
"""

import numpy as np
import pytest
from scipy.stats import rankdata

from minicnn.errors import MinicnnError
from minicnn.tools import sanity_protocols as sp


def fixed_attributions(seed=0, shape=(3, 64, 64)):
    """Two correlated signed attributions with exact zeros (a dead corner) and a few large values."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    b = 0.6 * a + 0.8 * rng.standard_normal(shape)
    a[:, :10, :10] = 0.0
    b[:, -8:, -12:] = 0.0
    a[0, 20, 20] = b[-1, 5, 21] = 25.0  # beyond the 99th percentile: clipped
    return a, b


def percentile(values, q):
    """Linear interpolation between order statistics (NumPy's default), written out."""
    v = np.sort(np.ravel(values))
    pos = q / 100 * (len(v) - 1)
    lo = int(np.floor(pos))
    return v[lo] + (pos - lo) * (v[min(lo + 1, len(v) - 1)] - v[lo])


def rank_corr(a, b):
    return np.corrcoef(rankdata(np.ravel(a)), rankdata(np.ravel(b)))[0, 1]


def their_grayscale(a):
    g = sum(np.abs(a[c]) for c in range(a.shape[0]))
    vmax, vmin = percentile(g, 99), g.min()
    return np.clip((g - vmin) / (vmax - vmin), 0, 1)


def their_diverging(a):
    d = sum(a[c] for c in range(a.shape[0]))
    span = abs(percentile(d, 99))
    return np.clip((d + span) / (2 * span), -1, 1)


def their_min_max(a):
    m = np.transpose(a, (1, 2, 0)).astype(np.float32)
    return (m - m.min()) / (m.max() - m.min())


def gaussian_blur(img, sigma=1.5, radius=6):
    """Separable Gaussian (scipy's truncate 4 at sigma 1.5: radius 6, 13 taps), edges mirrored with
    the edge pixel repeated (scipy's 'reflect' is NumPy's 'symmetric')."""
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    p = np.pad(img, radius, mode="symmetric")
    rows = np.array(
        [[p[i, j : j + 2 * radius + 1] @ k for j in range(img.shape[1])] for i in range(p.shape[0])]
    )
    return np.array(
        [[rows[i : i + 2 * radius + 1, j] @ k for j in range(img.shape[1])] for i in range(img.shape[0])]
    )


def their_ssim(x, y):
    """skimage 0.15 compare_ssim(x, y, gaussian_weights=True, multichannel=True) on float32 images:
    data range 2 (float dtype range), 11x11 window for the sample-covariance factor and the crop."""
    c1, c2, n = (0.01 * 2) ** 2, (0.03 * 2) ** 2, 121
    out = []
    for c in range(x.shape[2]):
        a, b = x[..., c].astype(np.float64), y[..., c].astype(np.float64)
        ux, uy = gaussian_blur(a), gaussian_blur(b)
        vx = n / (n - 1) * (gaussian_blur(a * a) - ux * ux)
        vy = n / (n - 1) * (gaussian_blur(b * b) - uy * uy)
        vxy = n / (n - 1) * (gaussian_blur(a * b) - ux * uy)
        s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
        out.append(s[5:-5, 5:-5].mean())
    return float(np.mean(out))


def test_adebayo_protocol_reproduces_their_formulas():
    from skimage.feature import hog

    for seed, shape in ((0, (3, 64, 64)), (1, (1, 56, 72))):
        a, b = fixed_attributions(seed, shape)
        got = sp.compare_pair(a, b, "adebayo")
        assert abs(got["spearman_abs"] - rank_corr(their_grayscale(a), their_grayscale(b))) < 1e-6
        assert abs(got["spearman"] - rank_corr(their_diverging(a), their_diverging(b))) < 1e-6
        za, zb = their_min_max(a), their_min_max(b)
        assert abs(got["ssim"] - their_ssim(za, zb)) < 1e-6
        ha = hog(za, pixels_per_cell=(16, 16), cells_per_block=(3, 3), channel_axis=-1)
        hb = hog(zb, pixels_per_cell=(16, 16), cells_per_block=(3, 3), channel_axis=-1)
        assert abs(got["hog"] - rank_corr(ha, hb)) < 1e-6
        # the protocols differ on these maps: the comparison is not the same number thrice
        mine = sp.compare_pair(a, b, "minicnn")
        assert abs(mine["ssim"] - got["ssim"]) > 0.01
        if shape[0] > 1:  # sum_c |a_c| is not |sum_c a_c| (on one channel only the clipped 1% differ)
            assert abs(mine["spearman_abs"] - got["spearman_abs"]) > 1e-3


def test_adebayo_ssim_is_not_todays_scikit_image_default():
    """scikit-image >= 0.19 truncates the Gaussian at 3.5 sigma (11 taps) and needs data_range (1 for
    [0, 1] maps is what one would pass today): the authors' 13-tap, range-2 SSIM differs from both,
    by more than the 1e-6 the test above holds it to."""
    from skimage.metrics import structural_similarity

    a, b = fixed_attributions(2)
    za, zb = their_min_max(a), their_min_max(b)
    ours = sp.gaussian_ssim(za, zb)
    assert abs(ours - their_ssim(za, zb)) < 1e-6
    taps = structural_similarity(za, zb, gaussian_weights=True, channel_axis=-1, data_range=2.0)
    assert abs(ours - taps) > 2e-6
    today = structural_similarity(za, zb, gaussian_weights=True, channel_axis=-1, data_range=1.0)
    assert abs(ours - today) > 1e-3


def test_adebayo_measures_undefined_on_small_maps():
    a, b = fixed_attributions(3, (1, 28, 28))
    got = sp.compare_pair(a, b, "adebayo")
    assert np.isnan(got["hog"]) and not np.isnan(got["ssim"])  # HOG needs 48 px with 16-px cells
    assert np.isnan(sp.compare_pair(a[:, :10, :10] + 1, b[:, :10, :10], "adebayo")["ssim"])


def test_quantus_protocol_against_quantus():
    from frameworks import quantus

    q = quantus()
    from quantus.functions.normalise_func import normalise_by_max
    from quantus.functions.similarity_func import correlation_spearman

    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 3, 20, 24))
    b = 0.5 * a + rng.standard_normal(a.shape)
    a[1, :, :5] = 0.0
    # Quantus' MPRT on explanations it is handed: a (N, 1, H, W) map, normalise_by_max over the batch
    # (its default axes), then |.|, then Spearman per row of the flattened batch
    qa, qb = (np.abs(normalise_by_max(v.sum(axis=1, keepdims=True))) for v in (a, b))
    expected = correlation_spearman(qa.reshape(4, -1), qb.reshape(4, -1), batched=True)
    got = sp.compare(a, b, "quantus")["spearman_abs"]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    mprt = q.MPRT(disable_warnings=True)
    assert mprt.similarity_func is correlation_spearman and mprt.abs and mprt.normalise
    assert mprt.layer_order == "top_down"  # the cascade, from the top: randomization_test's default


def test_tie_rule_on_maps_built_to_fool_a_rank_correlation():
    """Half the pixels zero in one map (dead ReLUs on a black background), small in the other;
    the rest unrelated: |.| ranks agree on the background alone."""
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((2, 1, 40, 40))
    background = np.zeros((40, 40), bool)
    background[:, :22] = True
    a[0, background] = 0.0
    b[0, background] *= 1e-3
    for protocol in sp.PROTOCOLS:
        got = sp.compare_pair(a, b, protocol)
        assert got["tied"] == pytest.approx(background.mean())
        assert got["spearman_abs"] > 0.7  # what the untied measure reads
        fg = ~background
        assert got["spearman_fg"] == pytest.approx(
            rank_corr(sp._abs_map(a, protocol)[fg], sp._abs_map(b, protocol)[fg]), abs=1e-12
        )
        assert abs(got["spearman_fg"]) < 0.2
        assert sp.verdict(got, 0.5) == ("spearman_fg", got["spearman_fg"], "changed")
    # below the stated share the verdict reads spearman_abs
    a2 = a.copy()
    a2[0, background] = rng.standard_normal(background.sum())
    got = sp.compare_pair(a2, b, "minicnn")
    assert got["tied"] == 0 and sp.verdict(got, 0.5)[0] == "spearman_abs"


def test_bad_protocol_and_shapes():
    with pytest.raises(
        MinicnnError, match="unknown protocol 'paper'; expected one of: minicnn, adebayo, quantus"
    ):
        sp.compare(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), "paper")
    with pytest.raises(MinicnnError, match="same shape|one shape"):
        sp.compare(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)))


def test_shipped_gradient_reads_changed_under_every_randomisation(digit_net, make_digit_images):
    """The digits' gradient: |.| ranks stay at ~0.9 (the background's tied zeros), the verdict reads
    the foreground and says "changed" for the cascade, the independent test and permuted labels."""
    import minicnn as mc
    from minicnn.tools.sanity_data import PERMUTED_MODEL
    from minicnn.tools.sanity_suite import run_checks

    x = make_digit_images(digit_net, 4)
    targets = digit_net.run(x).output().argmax(1)
    f = run_checks(digit_net, x, targets, ["gradient", "guided"], ("cascade", "independent", "data"),
                   permuted=mc.load(PERMUTED_MODEL))  # fmt: skip
    for test in ("cascade", "independent", "data"):
        cell = f.cells[("gradient", test)]
        assert cell.measure == "spearman_fg" and cell.tied > sp.TIED_SHARE and cell.changed, (test, cell)
    assert f.results["cascade"].similarity["gradient"]["spearman_abs"][-1] > 0.8  # the untied number
    assert not f.cells[("guided", "cascade")].changed  # the paper's finding for guided backprop
    assert "protocol: minicnn" in f.table() and " fg" in f.table()


def test_quantus_mprt_end_to_end_reads_as_the_quantus_protocol():
    """Quantus' own MPRT, run on a torch model with an explain function that records every map it
    hands over: each layer's score equals compare(original map, that layer's map, "quantus")."""
    from frameworks import quantus

    q = quantus()
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 8 * 8, 3),
    ).double()
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8))
    y = np.array([0, 1, 2])
    seen = []

    def explain(model, inputs, targets, **kwargs):
        xt = torch.tensor(np.asarray(inputs), dtype=torch.float64, requires_grad=True)
        out = model(xt)
        out[torch.arange(len(xt)), torch.as_tensor(np.asarray(targets))].sum().backward()
        seen.append(xt.grad.detach().numpy().copy())
        return seen[-1]

    scores = q.MPRT(disable_warnings=True, display_progressbar=False)(
        model=model, x_batch=x, y_batch=y, a_batch=None, explain_func=explain, channel_first=True,
        softmax=False, device="cpu",
    )  # fmt: skip
    layers = [name for name in scores if name != "original"]
    assert layers == ["3", "0"]  # top down: the dense layer, then the convolution
    maps = seen[-len(layers) :]  # the explanations of the randomised models, in order
    for name, m in zip(layers, maps):
        ours = compare_quantus(seen[0], m)
        np.testing.assert_allclose(ours, scores[name], atol=1e-12, err_msg=name)
    assert abs(scores["3"][0] - 1.0) > 1e-3  # the randomisation did change the maps
    signed = sp.compare(seen[0], maps[0], "minicnn")["spearman"]  # what a signed comparison would read
    assert np.abs(signed - np.asarray(scores["3"])).max() > 1e-3


def compare_quantus(a, b):
    return sp.compare(a, b, "quantus")["spearman_abs"]
