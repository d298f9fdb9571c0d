"""Pictures: each primitive against an independent reference (cmap's own colormap call, Pillow's
resize and drawing, plain arithmetic), plus atomic saving."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from minicnn.errors import MinicnnError
from minicnn.render import (
    contrast_normalize,
    diverging,
    draw_boxes,
    grid,
    heatmap,
    hstack,
    overlay,
    save_npy,
    save_png,
    to_rgb,
    upscale,
)

RNG = np.random.default_rng(0)


def test_heatmap_matches_cmap_colormap_call():
    import cmap

    values = RNG.normal(size=(13, 17))
    expected = cmap.Colormap("inferno")((values - values.min()) / np.ptp(values))[..., :3] * 255
    got = heatmap(values, "inferno").astype(np.float64)
    assert got.shape == (13, 17, 3)
    # a 256-entry table against the continuous map: at most one table step apart
    assert np.abs(got - expected).max() <= 6.0
    first = np.round(np.asarray(cmap.Colormap("inferno")(0.0))[:3] * 255)
    np.testing.assert_allclose(got[values == values.min()][0], first, atol=1)


def test_heatmap_ends_and_explicit_range():
    v = np.array([[0.0, 1.0]])
    lut_lo, lut_hi = heatmap(np.array([[0.0, 1.0]]))[0]
    np.testing.assert_array_equal(
        heatmap(v, lo=-1.0, hi=3.0)[0, 0], heatmap(np.array([[-1.0, 0.0, 3.0]]))[0, 1]
    )
    assert not np.array_equal(lut_lo, lut_hi)
    const = heatmap(np.full((3, 3), 7.0))
    assert (const == lut_lo).all(), "a constant map is drawn in the lowest colour"


def test_diverging_zero_is_the_middle_colour():
    v = np.array([[-2.0, 0.0, 1.0]])
    out = diverging(v)
    mid = heatmap(np.array([[0.0, 0.5, 1.0]]), "colorbrewer:RdBu_r")[0, 1]
    np.testing.assert_array_equal(out[0, 1], mid)
    np.testing.assert_array_equal(out[0, 0], heatmap(np.array([[0.0, 1.0]]), "colorbrewer:RdBu_r")[0, 0])


def test_to_rgb_layouts_agree():
    chw = RNG.random((3, 5, 7))
    hwc = np.moveaxis(chw, 0, -1)
    np.testing.assert_array_equal(to_rgb(chw), to_rgb(hwc))
    np.testing.assert_array_equal(to_rgb(chw), np.round(hwc * 255).astype(np.uint8))
    grey = RNG.random((5, 7))
    np.testing.assert_array_equal(to_rgb(grey[None]), to_rgb(grey))
    assert (to_rgb(grey)[..., 0] == to_rgb(grey)[..., 2]).all()
    assert to_rgb(np.array([[-1.0, 2.0]]))[0].tolist() == [[0, 0, 0], [255, 255, 255]]
    with pytest.raises(MinicnnError, match="expected an image"):
        to_rgb(np.zeros((2, 3, 4, 5)))


def test_contrast_normalize_is_zero_centred_and_keeps_sign():
    s = RNG.normal(size=(3, 8, 8)) * 1e-3 + 5.0
    out = contrast_normalize(s, percentile=100)
    centred = s - s.mean()
    np.testing.assert_allclose(out, 0.5 + 0.5 * centred / np.abs(centred).max())
    assert out.min() >= 0 and out.max() <= 1
    assert np.isclose(min(out.min(), 1 - out.max()), 0.0), "the strongest value reaches an end"
    np.testing.assert_array_equal(contrast_normalize(np.zeros((2, 2))), np.full((2, 2), 0.5))
    clipped = contrast_normalize(s, percentile=50)
    assert ((clipped == 0) | (clipped == 1)).mean() > 0.4


def test_upscale_equals_pillow_nearest():
    img = (RNG.random((28, 28, 3)) * 255).astype(np.uint8)
    big = upscale(img)
    ref = np.asarray(Image.fromarray(img).resize((224, 224), Image.NEAREST))
    np.testing.assert_array_equal(big, ref)
    assert upscale(np.zeros((500, 300, 3), np.uint8)).shape == (500, 300, 3)
    assert upscale(img[..., 0], 3).shape == (84, 84)


def test_overlay_blend_rule():
    img = (RNG.random((6, 6, 3)) * 255).astype(np.uint8)
    values = np.zeros((6, 6))
    values[2, 3] = 1.0
    out = overlay(img, values, alpha=0.6, cmap="inferno").astype(np.float64)
    grey = img.astype(np.float64).mean(axis=2)
    cold = values == 0
    np.testing.assert_allclose(out[cold], np.repeat(np.round(grey[cold])[:, None], 3, 1), atol=0.5)
    hot = heatmap(np.array([[0.0, 1.0]]), "inferno")[0, 1].astype(np.float64)
    np.testing.assert_allclose(out[2, 3], np.round(0.4 * grey[2, 3] + 0.6 * hot), atol=0.5)
    coarse = overlay(img, np.ones((3, 3)))  # a coarse map is resized to the image
    assert coarse.shape == (6, 6, 3)


def test_grid_places_tiles_in_cells():
    tiles = [np.full((4, 5, 3), 10 * (i + 1), np.uint8) for i in range(5)]
    out = grid(tiles, ncols=3, pad=2)
    assert out.shape == (2 * 4 + 3 * 2, 3 * 5 + 4 * 2, 3)
    for i in range(5):
        r, c = divmod(i, 3)
        y, x = 2 + r * 6, 2 + c * 7
        assert (out[y : y + 4, x : x + 5] == 10 * (i + 1)).all()
    assert (out[0] == 255).all() and (out[-6:, -7:] == 255).all()  # padding and the empty cell
    labelled = hstack(tiles[:2], ["a", "b"])
    assert labelled.shape[0] > 4 + 2 * 4 and labelled.shape[1] == 2 * 5 + 3 * 4
    assert (labelled[: labelled.shape[0] - 4 - 4] < 128).any(), "the caption is drawn in black"
    with pytest.raises(MinicnnError, match="labels"):
        grid(tiles, ["x"])


def test_draw_boxes_matches_pillow_rectangle():
    from PIL import ImageDraw

    img = np.zeros((30, 30, 3), np.uint8)
    out = draw_boxes(img, [(2, 3, 10, 12)], [(0, 200, 0)], scale=2, width=1)
    ref = Image.fromarray(img)
    ImageDraw.Draw(ref).rectangle((4, 6, 19, 23), outline=(0, 200, 0), width=1)
    np.testing.assert_array_equal(out, np.asarray(ref))
    assert (out[6, 4:20] == (0, 200, 0)).all() and (out[10, 10] == 0).all()
    with pytest.raises(MinicnnError, match="x0 <= x1"):
        draw_boxes(img, [(5, 5, 1, 9)])


def test_save_png_and_npy_round_trip(tmp_path):
    img = (RNG.random((9, 11, 3)) * 255).astype(np.uint8)
    path = save_png(img, tmp_path / "a.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), img)
    arr = RNG.normal(size=(2, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.load(save_npy(arr, tmp_path / "a.npy")), arr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "a.png"]


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    with pytest.raises(MinicnnError, match="uint8"):
        save_png(np.zeros((4, 4, 3)), tmp_path / "x.png")

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        save_png(np.zeros((4, 4, 3), np.uint8), tmp_path / "y.png")
    assert list(tmp_path.iterdir()) == []


def test_positions_to_pixels_takes_the_nearest_window_centre():
    from minicnn.render.figures import positions_to_pixels

    values = RNG.normal(size=(3, 4))
    ys, xs, size = np.array([0, 4, 8]), np.array([0, 3, 6, 9]), 5
    out = positions_to_pixels(values, ys, xs, size, (13, 14))
    for r in range(13):  # brute force: distance from pixel to every window centre
        for c in range(14):
            i = min(range(3), key=lambda k: abs(r - (ys[k] + 2)))
            j = min(range(4), key=lambda k: abs(c - (xs[k] + 2)))
            assert out[r, c] == values[i, j]
