"""Where the shipped models and sample inputs live.

They sit in ``weights/`` at the top of the repository (the README installs minicnn in editable mode,
so the package finds them beside itself). ``MINICNN_WEIGHTS`` overrides the folder.
"""

from __future__ import annotations

import os
from pathlib import Path

WEIGHTS_DIR = Path(os.environ.get("MINICNN_WEIGHTS", Path(__file__).resolve().parents[1] / "weights"))
DATA_DIR = Path(__file__).resolve().parent / "data"  # bundled tables (ImageNet class names)

DEFAULT_MODEL = WEIGHTS_DIR / "mnist_vgg.h5"
GAP_MODEL = WEIGHTS_DIR / "mnist_gap.h5"
