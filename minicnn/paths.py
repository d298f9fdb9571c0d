"""Where the shipped models and sample inputs live.

In a source checkout they sit in ``weights/`` at the top of the repository (the README and the
figures point there). A wheel, ``pip install .`` or a git-URL install carries the same files as the
package data ``minicnn.weights`` (pyproject.toml maps the top-level folder into the package), so they
are found beside the installed package. ``MINICNN_WEIGHTS`` overrides the folder.

Each shipped file also has a short name (``SHIPPED``), so that ``--weights mnist_gap``,
``--image digits`` and ``mc.load("mnist_vgg")`` work from any folder and after ``pip install``.
A name that is also an existing path is that path: a file you have always wins over a shipped one.
"""

from __future__ import annotations

import os
from pathlib import Path

from minicnn.errors import MinicnnError

_HERE = Path(__file__).resolve().parent


def weights_dir() -> Path:
    """The folder of the shipped files: $MINICNN_WEIGHTS, else the installed package data
    (site-packages/minicnn/weights), else the checkout's top-level weights/."""
    override = os.environ.get("MINICNN_WEIGHTS")
    if override:
        return Path(override)
    installed = _HERE / "weights"
    return installed if installed.is_dir() else _HERE.parent / "weights"


WEIGHTS_DIR = weights_dir()
DATA_DIR = _HERE / "data"  # bundled tables (ImageNet class names)

DEFAULT_MODEL = WEIGHTS_DIR / "mnist_vgg.h5"
GAP_MODEL = WEIGHTS_DIR / "mnist_gap.h5"
HELDOUT = WEIGHTS_DIR / "mnist_heldout.npz"  # 500 held-out digits (50 per class), never trained on
PHOTOS_DIR = WEIGHTS_DIR / "photos"  # four public-domain photographs (LICENSES.md)

# short name -> (path under the shipped folder, what it is: "model" or "images")
SHIPPED = {
    "mnist_vgg": ("mnist_vgg.h5", "model"),
    "mnist_gap": ("mnist_gap.h5", "model"),
    "mnist_vgg_permuted": ("mnist_vgg_permuted.h5", "model"),
    "digits": ("mnist_heldout.npz", "images"),  # the 500 held-out digits with their labels
    "clutter": ("clutter.npz", "images"),  # 84x84 canvases, one digit each, with its box
    "photos": ("photos", "images"),  # the folder of four photographs
    "astronaut": ("photos/astronaut.jpg", "images"),
    "cat": ("photos/cat.jpg", "images"),
    "coffee": ("photos/coffee.jpg", "images"),
    "rocket": ("photos/rocket.jpg", "images"),
}


def short_names(category: str) -> list[str]:
    """The short names of one category ("model" or "images"), in SHIPPED's order."""
    return [name for name, (_, c) in SHIPPED.items() if c == category]


def shipped(name: str) -> Path:
    """The shipped file (or folder) with short name ``name``; MinicnnError listing them if unknown."""
    if name not in SHIPPED:
        raise MinicnnError(f"unknown shipped file {name!r} (short names: {', '.join(SHIPPED)})")
    return weights_dir() / SHIPPED[name][0]


def resolve(path, category: str) -> Path:
    """``path`` as a Path when it exists; else, when it is a short name of ``category`` ("model" or
    "images"), the shipped file; else MinicnnError: one line naming it and listing the short names.

    An existing path wins over a short name of the same spelling (a file or folder called
    ``digits`` in the current folder is read, not the shipped digits).
    """
    given = Path(path)
    if given.exists() or given.is_symlink():
        return given
    text = os.fspath(path)
    if isinstance(text, str) and text in SHIPPED and SHIPPED[text][1] == category:
        return shipped(text)
    what = "model" if category == "model" else "image"
    raise MinicnnError(
        f"{given}: no such file, nor a shipped {what} (short names: {', '.join(short_names(category))})"
    )
