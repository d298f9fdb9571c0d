"""The per-image jobs: localisation evaluation over labelled canvases (IoU with the true boxes,
computed here by hand, against mc.localize run on the whole batch at once) and saliency maps written
one file per image (against mc.saliency of each image); the shard size does not change the answer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import assert_close

import minicnn as mc
from minicnn.cli.main import main
from minicnn.paths import DEFAULT_MODEL, GAP_MODEL, HELDOUT, WEIGHTS_DIR

N = 16


@pytest.fixture(scope="module")
def canvases(tmp_path_factory):
    """(folder, csv, images (N, 84, 84) uint8, labels, boxes) of the first N shipped clutter canvases."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("canvases")
    with np.load(WEIGHTS_DIR / "clutter.npz") as data:
        images, labels, boxes = data["images"][:N], data["labels"][:N], data["boxes"][:N]
    rows = ["image,label,x0,y0,x1,y1"]
    for i in range(N):
        Image.fromarray(images[i]).save(folder / f"c{i:02d}.png")
        rows.append(",".join([f"c{i:02d}.png", str(labels[i]), *map(str, boxes[i])]))
    csv = folder.parent / "canvases.csv"
    csv.write_text("\n".join(rows) + "\n")
    return folder, csv, images, labels, boxes


def iou(a, b):
    """Intersection over union of two (x0, y0, x1, y1) boxes, ends exclusive, by counting pixels."""
    canvas = np.zeros((2, 100, 100), dtype=bool)
    canvas[0, a[1] : a[3], a[0] : a[2]] = True
    canvas[1, b[1] : b[3], b[0] : b[2]] = True
    return (canvas[0] & canvas[1]).sum() / (canvas[0] | canvas[1]).sum()


def evaluate(folder, csv, out, *extra):
    code = main(["evaluate", "--image", str(folder), "--boxes", str(csv), "--out", str(out), "--no-progress",
                 *map(str, extra)])  # fmt: skip
    assert code == 0
    return (out / "localization.csv").read_text().splitlines()


def test_localisation_evaluation(canvases, tmp_path, capsys):
    folder, csv, images, labels, boxes = canvases
    lines = evaluate(folder, csv, tmp_path / "a", "--shard-size", "5")
    net = mc.load(GAP_MODEL)
    x = mc.preprocess(images[..., None], "unit")
    expected = mc.localize(net, x, [int(c) for c in labels], progress=False).boxes
    rows = [line.split(",") for line in lines[1:]]
    assert [r[0] for r in rows] == [f"c{i:02d}.png" for i in range(N)]
    got = np.array([[int(v) for v in r[3:7]] for r in rows])
    assert np.array_equal(got, expected)
    ious = np.array([iou(expected[i], boxes[i]) for i in range(N)])
    np.testing.assert_allclose([float(r[-1]) for r in rows], ious, atol=1e-6)
    fraction = (ious >= 0.5).mean()
    assert 0 < fraction < 1  # a test that could see either side of the threshold
    assert f"({fraction:.3f})" in capsys.readouterr().out
    assert evaluate(folder, csv, tmp_path / "b", "--shard-size", "16") == lines  # one shard, same rows


def test_evaluation_file_naming_missing_images(canvases, tmp_path, capsys):
    folder, csv, *_ = canvases
    bad = tmp_path / "boxes.json"
    bad.write_text(
        json.dumps(
            {"c00.png": {"label": 1, "box": [0, 0, 5, 5]}, "gone.png": {"label": 2, "box": [0, 0, 5, 5]}}
        )
    )
    code = main(["evaluate", "--image", str(folder), "--boxes", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "names 1 image(s) that are not in the dataset, first 'gone.png'" in err[0]


def test_saliency_maps_one_file_per_image(tmp_path):
    out = tmp_path / "o"
    args = ["attribute", "--count", "12", "--shard-size", "5", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    net = mc.load(DEFAULT_MODEL)
    with np.load(HELDOUT) as data:
        x = mc.preprocess(data["images"][:12, :, :, None], "unit")
    files = sorted((out / "saliency").glob("*.npz"))
    assert len(files) == 12
    for i in (0, 7, 11):
        expected = mc.saliency(net, x[i : i + 1], "predicted")[0]
        with np.load(out / "saliency" / f"images_{i}.npz") as data:
            # float32: a batch of 5 rounds differently from a batch of 1, at ~1e-5 of the map's peak
            assert_close(data["saliency"], expected, rtol=1e-4, what=f"saliency of image {i}")
            assert json.loads(str(data["meta"]))["image"] == f"images[{i}]"
    # resume: a lost shard file (images 5..9) is the only work done again
    (out / "shards" / "saliency" / "saliency-000000005-000000010.npz").unlink()
    stamps = {f.name: f.stat().st_mtime_ns for f in files}
    assert main([*args, "--resume"]) == 0
    again = {f.name for f in files if f.stat().st_mtime_ns != stamps[f.name]}
    assert again == {f"images_{i}.npz" for i in range(5, 10)}


@pytest.mark.parametrize(
    "method, weights, options",
    [("cam", GAP_MODEL, []), ("occlusion", DEFAULT_MODEL, ["--size", "6", "--stride", "3"]),
     ("reconstruct", DEFAULT_MODEL, ["--layer", "block2_conv1_relu", "--mode", "guided"])],
)  # fmt: skip
def test_other_maps_equal_the_tools(method, weights, options, tmp_path):
    """Shards of 3 images give each image the map the tool gives it in a batch of all 7."""
    out = tmp_path / "o"
    args = ["attribute", "--method", method, "--weights", weights, "--count", "7", "--shard-size", "3",
            "--out", out, "--no-progress", *options]  # fmt: skip
    assert main([str(a) for a in args]) == 0
    net = mc.load(weights)
    with np.load(HELDOUT) as data:
        x = mc.preprocess(data["images"][:7, :, :, None], "unit")
    if method == "cam":
        expected = mc.cam(net, x)
    elif method == "occlusion":
        expected = mc.occlusion(net, x, size=6, stride=3, progress=False).attribution
    else:
        expected = mc.reconstruct(net, x, "block2_conv1_relu", mode="guided")
    for i in range(7):
        with np.load(out / method / f"images_{i}.npz") as data:
            assert_close(data[method], expected[i], rtol=1e-4, what=f"{method} of image {i}")
