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


def test_quick_start_is_two_commands_with_the_distributions_name():
    """The quick start stays exactly two commands (install + demo, then the tests), and no install
    line names 'minicnn' on the package index (an unrelated project)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = text[text.index("## Quick start") : text.index("### What the demo shows")]
    blocks = re.findall(r"```bash\n(.*?)```", quick, re.S)
    assert [b.strip() for b in blocks] == [
        "pip install . && minicnn demo",
        'pip install torch==2.13.0 && pip install -e ".[test,train]" && pip install --no-deps zennit==0.5.1 '
        "grad-cam==1.5.7 ttach==0.0.3 && python -m pytest -q",
    ]
    assert not re.search(r"pip install ['\"]?minicnn(?![-\w])", text)
    assert "`minicnn-vis`" in quick and 'pip install "minicnn-vis[onnx]"' in quick


def test_every_command_line_in_the_readme_parses():
    """Each `minicnn COMMAND ...` the README shows names a real command and real options: parsed by
    the parser 'minicnn' builds (values that name the reader's own files may not exist here, so only
    unknown commands, options and choices fail)."""
    import contextlib
    import io
    import shlex

    from minicnn.cli.main import COMMANDS, build_parser

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [" ".join(s.split()) for s in re.findall(r"`(minicnn [^`]+)`", text)]
    lines = [s for s in lines if s.split()[1] in COMMANDS and "[" not in s and "FILE" not in s]
    assert len(lines) >= 15, lines
    parser = build_parser()
    for line in lines:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.suppress(SystemExit):
            parser.parse_args(shlex.split(line)[1:])
        err = stderr.getvalue()
        # the README also names a command alone ("`minicnn evaluate`"): a missing required option is fine
        for wrong in ("unrecognized arguments", "invalid choice", "expected one argument"):
            assert wrong not in err, f"README: {line}\n{err}"
