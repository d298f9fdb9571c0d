"""Reading the user's images (or the shipped samples) for a network, and back to pixels for drawing.

Bad paths, unreadable files and images of the wrong kind become one-line MinicnnErrors; an unreadable
file inside a folder is skipped with a warning that names it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError

DEFAULT_SAMPLES = 4  # shipped held-out digits used when --image is not given


# -- inputs ------------------------------------------------------------------------------------
@dataclass
class Inputs:
    """A batch ready for the network and for display.

    x: (N, C, H, W) network input (preprocessed, net.dtype, on the net's device);
    display: (N, H, W, 3) uint8 RGB as the user sees the image; names: one short name per image;
    labels: the true classes when known (shipped samples), else None.
    """

    x: object
    display: np.ndarray
    names: list
    labels: list | None = None
    boxes: np.ndarray | None = None  # true boxes (N, 4) (x0, y0, x1, y1) of the shipped canvases


def image_files(path: Path) -> list[Path]:
    """The image files of a folder (its own, not its subfolders', sorted by name:
    ``io.image_folder``), or [path] for a file."""
    from minicnn.io.image_folder import image_files as folder_images

    path = Path(path)
    if path.is_dir():
        return folder_images(path, recursive=False)
    if not path.exists():
        raise MinicnnError(f"image {path} not found (expected an image file or a folder of images)")
    return [path]


def output_names(files) -> dict:
    """file -> the name its outputs carry: the stem, or stem_ext when two files share a stem
    (cat.jpg and cat.png -> cat_jpg, cat_png), so that no output of one overwrites the other's."""
    from collections import Counter

    from minicnn.cli.output import safe_name

    stems = Counter(safe_name(f.stem) for f in files)
    return {
        f: safe_name(f.stem)
        if stems[safe_name(f.stem)] == 1
        else safe_name(f"{f.stem}_{f.suffix.lstrip('.')}")
        for f in files
    }


def shipped_samples(count: int = DEFAULT_SAMPLES, one_per_class: bool = True):
    """(images (n, 28, 28, 1) uint8, labels (n,), names) from the shipped held-out digits: the
    first of each class (0, 1, 2, ...) or, with ``one_per_class=False``, the first ``count``."""
    from minicnn import paths

    path = paths.WEIGHTS_DIR / "mnist_heldout.npz"
    if not path.is_file():
        raise MinicnnError(f"shipped samples {path} not found; pass --image FILE")
    with np.load(path) as data:
        images = np.asarray(data["images"] if "images" in data else data["x"])
        labels = np.asarray(data["labels"] if "labels" in data else data["y"])
    # one digit per class in order 0, 1, 2, ... so the default pictures show different classes
    if one_per_class:
        order = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)][:count]
    else:
        order = list(range(min(count, len(labels))))
    images = images[order]
    if images.ndim == 3:
        images = images[..., None]
    elif images.ndim == 4 and images.shape[1] == 1:
        images = np.moveaxis(images, 1, -1)
    if images.dtype != np.uint8:  # stored in [0, 1]: back to 0..255 for preprocess
        scale = 255.0 if images.max() <= 1.0 else 1.0
        images = np.clip(np.rint(images * scale), 0, 255).astype(np.uint8)
    names = [f"heldout{i}_label{int(labels[i])}" for i in order]
    return images, labels[order].astype(int).tolist(), names


def load_inputs(
    args, net, count: int = DEFAULT_SAMPLES, keep_size: bool | str = False, samples: str = "heldout"
) -> Inputs:
    """Read --image (a file or a folder; default: shipped digits) and preprocess it for ``net``.

    Images are converted to the network's channels (grey for one channel), resized to cover the
    network's input size and centre-cropped (``keep_size``: True keeps each file's own size;
    "gap" keeps it when the network has global average pooling, so accepts any size), and
    preprocessed with the convention in ``net.meta``.
    """
    import minicnn as mc
    from minicnn.render.images import to_rgb

    shape = net.input_shape
    channels = shape[0] if shape else 3
    if keep_size == "gap":  # only a network with global average pooling accepts any size
        keep_size = any(layer.is_global_pool for layer in net.layers)
    size = None if keep_size or not shape else (int(shape[1]), int(shape[2]))
    labels = boxes = None
    image = getattr(args, "image", None)
    sample = shipped_sample(image)
    if sample is not None:  # --image digits or clutter: the shipped samples, as without --image
        image, samples = None, samples if sample == "heldout" and samples == "dataset" else sample
    if image is None and samples == "clutter":
        images, labels, boxes, names = shipped_clutter(count)
    elif image is None and samples == "dataset":
        images, labels, names = shipped_samples(count, one_per_class=False)
    elif image is None:
        images, labels, names = shipped_samples(count)
        if images.shape[-1] != channels:
            raise MinicnnError(
                f"the shipped digits have 1 channel but {args.weights} expects {channels}: pass --image FILE"
            )
    else:
        files = image_files(args.image)
        unique = output_names(files)
        loaded, names = [], []
        for f in files:
            try:
                loaded.append(mc.load_image(f, size=size, mode="L" if channels == 1 else "RGB"))
                names.append(unique[f])
            except MinicnnError as exc:
                if len(files) == 1:
                    raise
                print(f"warning: skipping {exc}", file=sys.stderr)
        if not loaded:
            raise MinicnnError(f"no readable image in {args.image}")
        shapes = {a.shape for a in loaded}
        if len(shapes) > 1:
            raise MinicnnError(f"images in {args.image} differ in size: {sorted(shapes)}")
        images = np.stack(loaded)
    convention = net.meta.get("preprocess") or "none"
    x = mc.preprocess(images, convention).astype(net.dtype, copy=False)
    display = np.stack([to_rgb(im) for im in images])
    return Inputs(net.xp.asarray(x), display, names, labels, boxes)


def display_signal(net, signal) -> np.ndarray:
    """An image-space signal (C, H, W) in the network's channel order -> RGB order for display."""
    from minicnn.backend import to_numpy
    from minicnn.io.preprocess import BGR_ORDER

    signal = to_numpy(signal)  # a GPU array is copied to the host for drawing
    if net.meta.get("preprocess") in BGR_ORDER and signal.shape[0] == 3:
        return signal[::-1]  # caffe input is BGR
    return signal


def display_images(net, x) -> np.ndarray:
    """Network-input images (N, C, H, W) -> (N, H, W, 3) uint8 RGB for viewing (``mc.deprocess``
    with the network's convention, clipped to the pixel range)."""
    import minicnn as mc
    from minicnn.backend import to_numpy
    from minicnn.io.preprocess import RGB_ONLY
    from minicnn.render.images import to_rgb

    convention = net.meta.get("preprocess") or "none"
    x = to_numpy(x)
    if convention in RGB_ONLY and x.shape[1] != 3:
        convention = "none"
    pixels = mc.deprocess(x, convention, clip=True) / 255.0  # "none": taken as 0..255 pixels
    return np.stack([to_rgb(p) for p in pixels])


def shipped_sample(image) -> str | None:
    """The shipped samples ``image`` names: "heldout" for the digits file, "clutter" for the
    canvases (what the short names ``digits`` and ``clutter`` name, minicnn.paths.SHIPPED), else
    None."""
    from minicnn import paths

    if image is None:
        return None
    for name, sample in (("digits", "heldout"), ("clutter", "clutter")):
        shipped = paths.shipped(name)
        if Path(image) == shipped or (Path(image).exists() and Path(image).resolve() == shipped.resolve()):
            return sample
    return None


def shipped_clutter(count: int = DEFAULT_SAMPLES):
    """(images (n, 84, 84, 1) uint8, labels, true boxes (n, 4) (x0, y0, x1, y1), names) from the
    shipped digits-in-clutter canvases."""
    from minicnn import paths

    path = paths.WEIGHTS_DIR / "clutter.npz"
    if not path.is_file():
        raise MinicnnError(f"shipped canvases {path} not found; pass --image FILE")
    with np.load(path) as data:
        images, labels, boxes = data["images"][:count], data["labels"][:count], data["boxes"][:count]
    names = [f"clutter{i}_label{int(c)}" for i, c in enumerate(labels)]
    return images[..., None], labels.astype(int).tolist(), boxes.astype(int), names
