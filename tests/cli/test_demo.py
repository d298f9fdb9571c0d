"""``minicnn demo`` with no arguments: every tool runs, index.html links only files that exist and
shows pictures for every section, and the printed path is the report."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from cli_helpers import ok, png_size

from minicnn.cli.cmd_demo import STEPS


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.headings, self._in_h2 = [], [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if "href" in attrs:
            self.links.append(attrs["href"])
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)
            self._in_h2 = False


def test_demo_writes_a_complete_report(shipped, tmp_path):
    r = ok("demo", cwd=tmp_path)  # no arguments at all: the default out-folder in the cwd
    out = tmp_path / "minicnn-out" / "demo"
    index = out / "index.html"
    assert f"open {index.resolve()}" in r.stdout
    page = Page()
    text = index.read_text(encoding="utf-8")
    page.feed(text)
    assert page.headings == [step[2] for step in STEPS]
    assert "not available" not in text and "failed" not in text
    for link in page.links:
        assert link.startswith("#"), f"external or file link {link}"
    assert page.images, "the report shows no pictures"
    for src in page.images:
        path = out / src
        assert not Path(src).is_absolute() and path.is_file(), src
        assert min(png_size(path)) >= 28
    folders = {Path(src).parts[0] for src in page.images}
    assert folders == {step[0] for step in STEPS}  # every tool draws, equivalence its three modes
    assert "<pre>" in text  # the measured equivalence table
    assert (out / "log.txt").is_file()
