"""The report page: links only to files that exist, text escaped, written atomically."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest

from minicnn.errors import MinicnnError
from minicnn.render import save_png
from minicnn.render.html import Section, render_index, write_index


class Links(HTMLParser):
    """Every src/href attribute and the text of the page, by Python's own HTML parser."""

    def __init__(self):
        super().__init__()
        self.links, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.links += [v for k, v in attrs if k in ("src", "href")]

    def handle_data(self, data):
        self.text.append(data)


def test_index_links_every_picture_and_nothing_else(tmp_path):
    (tmp_path / "saliency").mkdir()
    pics = [save_png(np.zeros((4, 4, 3), np.uint8), tmp_path / "saliency" / f"{i}.png") for i in range(2)]
    sections = [
        Section("Saliency <maps>", "minicnn saliency", "what & why", "Simonyan et al. 2013",
                [p.relative_to(tmp_path) for p in pics]),
        Section("Table", "minicnn equivalence", "t", "p", table="layer  diff\nrelu   0.5 <x>"),
    ]  # fmt: skip
    index = write_index(tmp_path, "demo", "intro", sections)
    parser = Links()
    parser.feed(index.read_text())
    images = [link for link in parser.links if not link.startswith("#")]
    assert sorted(images) == ["saliency/0.png", "saliency/1.png"]
    assert all((tmp_path / link).is_file() for link in images)
    text = "".join(parser.text)
    assert "Saliency <maps>" in text and "relu   0.5 <x>" in text and "what & why" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "saliency"]


def test_missing_picture_is_refused(tmp_path):
    with pytest.raises(MinicnnError, match="not a file"):
        write_index(tmp_path, "demo", "", [Section("a", "b", "c", "d", ["missing.png"])])
    assert list(tmp_path.iterdir()) == []


def test_render_index_is_plain_html():
    page = render_index("t", "i", [Section("a", "b", "c", "d")])
    assert page.startswith("<!DOCTYPE html>") and not re.search(r"<script|https?://", page)
