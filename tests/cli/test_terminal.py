"""Strings from files reach the terminal as text, never as control sequences (minicnn/cli/terminal.py).

A model whose layer names, class names and architecture carry ESC/BEL sequences (clear screen, set the
window title, colours) and an image folder with such a file name are run through the command; no raw
control character other than newline, carriage return and tab may appear on stdout or stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import REPO, minicnn
from PIL import Image

import minicnn as mc
from minicnn.cli.terminal import CURSOR_UP, escaped

HOSTILE = "\x1b]0;PWNED\x07\x1b[2J\x1b[31m"


def _raw_controls(text: str) -> list[str]:
    return sorted({ch for ch in text.replace(CURSOR_UP, "") if (ord(ch) < 32 and ch not in "\n\r\t")
                   or 0x7F <= ord(ch) < 0xA0 or ch == "\u202e"})  # fmt: skip


def test_escaped_writes_controls_as_their_escapes():
    assert escaped("a\x1b[2Jb\x07\u202ec\n\t\r") == "a\\x1b[2Jb\\x07\\u202ec\n\t\r"
    assert escaped(f"bar{CURSOR_UP}bar") == f"bar{CURSOR_UP}bar"  # tqdm's nested bars
    assert _raw_controls(escaped(HOSTILE + "\x9b\x7f")) == []


@pytest.fixture(scope="module")
def hostile_model(tmp_path_factory):
    net = mc.load("mnist_vgg")
    net.meta["class_names"] = [HOSTILE + str(i) for i in range(10)]
    net.meta["architecture"] = HOSTILE + "arch"
    net.layers[0].name = HOSTILE + "conv"
    return mc.save(net, tmp_path_factory.mktemp("esc") / "esc.h5")


def _digit(path):
    """A 28x28 grey PNG: a bright square on black."""
    a = np.zeros((28, 28), np.uint8)
    a[8:20, 10:18] = 255
    Image.fromarray(a).save(path)
    return path


@pytest.mark.parametrize("name", ["info", "saliency"])
def test_names_from_a_model_file_never_reach_the_terminal_raw(hostile_model, tmp_path, name):
    if name == "info":
        r = minicnn("info", hostile_model, cwd=tmp_path)
    else:
        image = _digit(tmp_path / "digit.png")
        r = minicnn("saliency", "--weights", hostile_model, "--image", image, "--out", tmp_path, cwd=tmp_path)
    assert r.code == 0, r.stderr
    assert "\\x1b" in r.stdout  # the names are shown, escaped
    assert _raw_controls(r.stdout) == [] and _raw_controls(r.stderr) == []


def test_a_file_name_in_an_image_folder_never_reaches_the_terminal_raw(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / f"{HOSTILE}bad.png").write_bytes(b"not an image")
    _digit(folder / "digit.png")
    r = minicnn("saliency", "--image", folder, "--out", tmp_path / "out", cwd=tmp_path)
    assert "bad.png" in r.stderr
    assert _raw_controls(r.stdout) == [] and _raw_controls(r.stderr) == []


def test_a_closed_pipe_on_stdout_ends_quietly(tmp_path):
    """``minicnn info m.h5 | head -1``: the reader leaves; no error line, no traceback."""
    read, write = os.pipe()
    os.close(read)  # every write to the pipe now fails with EPIPE
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "minicnn.cli.main", "info", "mnist_vgg"], stdout=write,
                          stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    os.close(write)
    assert proc.stderr == "" and proc.returncode == 141


def test_a_warning_is_one_line_naming_the_command(capsys):
    """A tool's warning (e.g. occlusion falling back to full passes on a graph) reaches the user of the
    command as one line, without Python's source path and line of minicnn's code."""
    import warnings

    from minicnn.cli.main import _warning_line

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _warning_line("occlusion")
        warnings.warn("a graph: every occluder position gets a full forward pass\nsecond line", stacklevel=1)
    err = capsys.readouterr().err
    assert err == "minicnn occlusion: warning: a graph: every occluder position gets a full forward pass\n"
