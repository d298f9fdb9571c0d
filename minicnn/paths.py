"""Where the shipped models and sample inputs live.

In a source checkout they sit in ``weights/`` at the top of the repository (the README and the
figures point there). A wheel, ``pip install .`` or a git-URL install carries the same files as the
package data ``minicnn.weights`` (pyproject.toml maps the top-level folder into the package), so they
are found beside the installed package. ``MINICNN_WEIGHTS`` overrides the folder.
"""

from __future__ import annotations

import os
from pathlib import Path

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
