"""``minicnn demo --weights RESNET --image FOLDER``: the report runs on a graph (residual blocks).

A 10-class ResNet-18 at 64x64 saved in minicnn's format and two 64x64 PNGs; every step but the
sanity checks (their cascade re-randomises each of the 21 weighted layers: over a minute here)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
from cli_helpers import ok, png_size
from PIL import Image

import minicnn as mc
from minicnn.cli.cmd_demo import STEPS

TOOLS = [name for name, *_ in STEPS if name != "sanity"]


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.headings, self._in_h2 = [], [], False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)
            self._in_h2 = False


def test_demo_report_on_a_resnet(tmp_path):
    mc.save(mc.resnet18(seed=0, num_classes=10, input_size=64), tmp_path / "r18.h5")
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(images / f"im{i}.png")
    out = tmp_path / "report"
    r = ok("demo", "--weights", tmp_path / "r18.h5", "--image", images, "--out", out, "--tools",
           ",".join(TOOLS), "--no-progress", timeout=300)  # fmt: skip
    index = out / "index.html"
    assert f"open {index.resolve()}" in r.stdout and index.is_file()
    page = Page()
    page.feed(index.read_text())
    assert len(page.headings) == len(TOOLS), page.headings
    assert len(page.images) >= 2 * len(TOOLS) - 4, page.images  # pictures in (nearly) every section
    for src in page.images:
        height, width = png_size(out / src)
        assert height >= 32 and width >= 32, src
    # the saliency of each image is drawn at the input's size (64 pixels) in its panels
    saliency = sorted((out / "saliency").glob("im*_saliency_*.png"))
    assert [p.name[:3] for p in saliency] == ["im0", "im1"]
    # the equivalence table: a row per node (ResNet-18 has 69 with the block outputs), a sum sends
    # the same signal down both branches under both rules (0 difference), convolutions agree to
    # float32 precision, and the BatchNorm forward text no longer runs into the next column
    log = (out / "log.txt").read_text()
    rows = [
        line for line in log.splitlines() if re.match(r"^layer\d\.\d\S*\s+(Add|Conv2D|BatchNorm2D)\s", line)
    ]
    adds = [line for line in rows if line.split()[1] == "Add"]
    convs = [line for line in rows if line.split()[1] == "Conv2D"]
    assert len(adds) == 8 and len(convs) == 16 + 3, (len(adds), len(convs))
    for line in adds:
        assert float(line.split()[-2]) == 0.0, line
    for line in convs:
        assert float(line.split()[-2]) < 1e-5, line
    bn = next(line for line in rows if line.split()[1] == "BatchNorm2D")
    assert "a X + b, a = g / s  R a" in bn, bn
