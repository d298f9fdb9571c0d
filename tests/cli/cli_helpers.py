"""Helpers for the command-line tests: run ``minicnn`` as a subprocess, read the PNGs it wrote
(a plain module: ``from conftest import`` is ambiguous when several test folders have a conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def minicnn(*args, cwd=None, timeout=600) -> Result:
    """Run ``python -m minicnn.cli.main ARGS`` and return its exit code and output."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TQDM_DISABLE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "minicnn.cli.main", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return Result(proc.returncode, proc.stdout, proc.stderr)


def ok(*args, **kwargs) -> Result:
    """Run and assert success, showing the output when it fails."""
    r = minicnn(*args, **kwargs)
    assert r.code == 0, f"exit {r.code}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "Traceback" not in r.stderr
    return r


def png_size(path) -> tuple[int, int]:
    """(height, width) of a PNG, after decoding every pixel (a broken file raises)."""
    with Image.open(path) as img:
        assert img.format == "PNG"
        a = np.asarray(img.convert("RGB"))
    return a.shape[:2]


def panels_width(n: int, panel: int, pad: int = 4) -> int:
    """Width of n panels of ``panel`` pixels in one row, as minicnn.render.grid lays them out."""
    return n * panel + (n + 1) * pad
