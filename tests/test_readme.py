"""The README's API example runs as written and computes what its comments say."""

import re
from pathlib import Path

import numpy as np
from support import assert_close

ROOT = Path(__file__).resolve().parents[1]


def api_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## The API in a few lines") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_api_example_runs_and_its_comments_hold(monkeypatch):
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(compile(api_example(), "README.md", "exec"), scope)  # noqa: S102 (our own README)
    net, x, digits, mc = scope["net"], scope["x"], scope["digits"], scope["mc"]
    assert x.shape == (4, 1, 28, 28) and x.dtype == np.float32
    assert scope["scores"].argmax(1).tolist() == digits["labels"][::125].tolist() == [0, 2, 5, 7]
    assert scope["maps"].shape == (4, 28, 28) and scope["da"].shape == (4, 32, 14, 14)
    for mode in mc.MODES:  # the dict of reconstructions equals one call per mode
        assert_close(scope["recs"][mode], mc.reconstruct(net, x, "block2_conv2_relu", mode=mode), 1e-6)
    assert_close(scope["maps"], np.abs(scope["dx"]["gradient"]).max(axis=1), 1e-6)
    assert net.run(scope["cm"].image).output().argmax(1).tolist() == [0, 1, 2]
