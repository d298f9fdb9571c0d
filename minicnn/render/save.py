"""Write pictures (PNG) and raw arrays (.npy, .npz with metadata) atomically: a temporary name, then a rename.

An interrupted run never leaves a half-written file where the user expects a finished one
(minicnn.io.atomic.atomic_path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.io.atomic import atomic_path


def save_png(image, path) -> Path:
    """Save (H, W, 3) or (H, W) uint8 as PNG at ``path``; returns the path."""
    from PIL import Image

    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
        raise MinicnnError(f"expected a uint8 image (H, W, 3) or (H, W), got {a.dtype} {a.shape}")
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(a).save(tmp, format="PNG")
    return path


def save_npy(array, path) -> Path:
    """Save a NumPy array as .npy at ``path``; returns the path."""
    path = Path(path)
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(array))
    return path


def save_npz(path, arrays: dict, meta: dict) -> Path:
    """Save named NumPy arrays and their metadata as one compressed .npz at ``path``.

    arrays: name -> array (any shape and dtype); meta: JSON-serialisable dict (model, image, target
    index and name, method, layer, settings), stored as the 0-d string array ``"meta"`` so that
    ``json.loads(str(np.load(path)["meta"]))`` reads it back without pickle.
    """
    import json

    if "meta" in arrays:
        raise MinicnnError("'meta' is reserved for the metadata of an .npz file")
    path = Path(path)
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload["meta"] = np.asarray(json.dumps(meta, sort_keys=True))
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **payload)
    return path
