"""Top-k DeconvNet projections over a dataset (Zeiler & Fergus 2013, sec. 2.1 and fig. 2).

For every feature map of a layer, find the k images of a dataset that activate it most (the
maximum over positions of the map in each image), project that single strongest activation back
to pixel space (DeconvNet by default: all other activations of the layer set to zero), and cut
from the input image the patch the unit sees: its exact receptive field through the conv/pool
stack. Each image appears at most once per feature map, as in Zeiler & Fergus (the maximum over
positions is taken first, then the top k images).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError
from minicnn.record import INPUT
from minicnn.rules import check_mode


def receptive_field(net, layer: str):
    """The input window of one unit of ``layer``: (size, jump, offset), each an (h, w) pair.

    Unit (y, x) of the layer's output sees input rows offset_h + y * jump_h ... + size_h - 1 (and
    likewise columns), before clipping to the image. A conv or pool layer with kernel k, stride s
    and padding p maps an output interval [a, b] to the input interval [a s - p, b s - p + k - 1];
    composing these through the stack gives size = 1 + sum_l (k_l - 1) J_(l-1), jump J = prod s_l
    and offset = -sum_l p_l J_(l-1), with J_(l-1) the product of the strides below layer l. Each
    layer gives its own (k, s, p) (``layer.window()``; pointwise layers have k = s = 1, p = 0).

    In a graph (residual blocks) a node sees what each of its inputs sees, so its window is the
    union over its input paths (``union``): the smallest start and the largest end; a 1x1 strided
    shortcut adds nothing beyond the block's main path. Returns None when the layer's units see the
    whole image (after Flatten, Dense or global pooling).
    """
    fields = {INPUT: ((1, 1), (1, 1), (0, 0))}
    for lay in net.layers[: net.index(layer) + 1]:
        given = [fields[name] for name in net.inputs[lay.name]]
        window = lay.window()
        if window is None or any(g is None for g in given):
            fields[lay.name] = None
            continue
        size, jump, offset = (list(v) for v in union(lay.name, given))
        for a in (0, 1):
            size[a] += (window.kernel[a] - 1) * jump[a]
            offset[a] -= window.padding[a] * jump[a]
            jump[a] *= window.stride[a]
        fields[lay.name] = (tuple(size), tuple(jump), tuple(offset))
    return fields[layer]


def union(name: str, fields: list) -> tuple:
    """One (size, jump, offset) covering every window in ``fields`` (the inputs of node ``name``).

    Inputs that are added have one shape, so their units step by one jump; the union of
    [o_i + y J, o_i + y J + s_i - 1] is then [min o_i + y J, max (o_i + s_i) - 1 + y J]. Inputs
    with different jumps have no common window (MinicnnError)."""
    jump = fields[0][1]
    if any(f[1] != jump for f in fields):
        raise MinicnnError(f"node {name!r}: its inputs step by different strides {[f[1] for f in fields]}")
    start = tuple(min(f[2][a] for f in fields) for a in (0, 1))
    end = tuple(max(f[2][a] + f[0][a] for f in fields) for a in (0, 1))
    return tuple(end[a] - start[a] for a in (0, 1)), jump, start


@dataclass
class TopK:
    """The k strongest activations of each feature map of a layer, with projections and patches.

    For M channels (rows) and k ranks (columns, strongest first); a slot is empty (index -1, value
    -inf, zero arrays) when the dataset has fewer than k images.

    channels:     (M,) the feature maps (or dense units), in the order of the rows
    values:       (M, k) float64, the activation (max over positions of the map in that image)
    index:        (M, k) int64, the image's position in the dataset (in ``files`` for a folder)
    position:     (M, k, 2) int64, (y, x) of the strongest unit in the map ((0, 0) for vectors)
    boxes:        (M, k, 4) int64, its receptive field (x0, y0, x1, y1), ends exclusive, in image
                  pixels; it may reach outside the image (padding)
    patches:      (M, k, C, R_h, R_w) the input image inside the box (network input space), the
                  part outside the image filled with 0
    projections:  (M, k, C, R_h, R_w) the projection (mc.reconstruct for that unit) inside the box;
                  it is exactly zero outside the box, so nothing is lost by the crop
    files:        the image files of a folder dataset (None for an array)
    """

    channels: np.ndarray
    values: np.ndarray
    index: np.ndarray
    position: np.ndarray
    boxes: np.ndarray
    patches: np.ndarray
    projections: np.ndarray
    files: list | None = None


class _Dataset:
    """An array (N, C, H, W) or a folder of image files, read in batches as network input."""

    def __init__(self, net, images, input_shape):
        self.net, self.files, self.array = net, None, None
        if isinstance(images, (str, Path)):
            from minicnn.io.image_folder import image_files

            self.files = image_files(images, recursive=True)
            self.shape = tuple(input_shape or net.input_shape or ())
            if len(self.shape) != 3:
                raise MinicnnError("a folder dataset needs input_shape=(C, H, W) or meta['input_shape']")
            self.length = len(self.files)
        else:
            if not hasattr(images, "ndim") or images.ndim != 4:
                raise MinicnnError(
                    f"expected images (N, C, H, W) or a folder, got {getattr(images, 'shape', images)!r}"
                )
            if len(images) == 0:
                raise MinicnnError("the dataset is empty: expected at least one image")
            dtype = np.dtype(getattr(images, "dtype", None))
            if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
                raise MinicnnError(f"expected real-valued images (float or integer), got dtype {dtype}")
            self.array = images
            self.shape = tuple(images.shape[1:])
            self.length = len(images)
        net.shapes(self.shape)  # one clear error when the images are too small for the network

    def _load(self, path):
        from minicnn.io.images import load_image
        from minicnn.io.preprocess import preprocess

        c, h, w = self.shape
        img = load_image(path, size=(h, w), mode="L" if c == 1 else "RGB")
        return preprocess(img, self.net.meta.get("preprocess") or "none", dtype=self.net.dtype)[0]

    def batches(self, batch_size: int):
        """Yields (indices (B,), images (B, C, H, W) on the host); unreadable files are skipped."""
        if self.array is not None:
            for i in range(0, self.length, batch_size):
                yield np.arange(i, min(i + batch_size, self.length)), self.array[i : i + batch_size]
            return
        for i in range(0, self.length, batch_size):
            idx, imgs = [], []
            for j in range(i, min(i + batch_size, self.length)):
                try:
                    imgs.append(self._load(self.files[j]))
                    idx.append(j)
                except (MinicnnError, OSError) as exc:
                    warnings.warn(f"skipping unreadable image {self.files[j]}: {exc}", stacklevel=3)
            if imgs:
                yield np.asarray(idx), np.stack(imgs)

    def take(self, indices):
        """The images at ``indices`` (B,) -> (B, C, H, W) on the host."""
        if self.array is not None:
            return to_numpy(self.array[np.asarray(indices)])
        return np.stack([self._load(self.files[i]) for i in indices])


def _per_image_max(a):
    """a (B, C, h, w) or (B, F) -> (max (B, C), flat argmax (B, C)) over each map's positions."""
    flat = a.reshape(a.shape[0], a.shape[1], -1)
    arg = flat.argmax(axis=2)  # NOTE: ties go to the first position in row-major order
    return to_numpy(flat.max(axis=2)).astype(np.float64), to_numpy(arg)


def topk(
    net,
    images,
    layer: str,
    k: int = 9,
    mode: str = "deconvnet",
    batch_size: int = 32,
    channels=None,
    input_shape=None,
    progress: bool = True,
) -> TopK:
    """The k strongest activations of each feature map of ``layer`` over a dataset, projected back.

    Args:
        net: a Sequential. images: an (N, C, H, W) array in network input space, or a folder of
            image files, searched recursively (``io.image_folder``), read with mc.load_image at
            input_shape and preprocessed with ``meta["preprocess"]`` (an unreadable file is skipped
            with a warning naming it).
        layer: any layer; for a (C, h, w) output each channel is a feature map, for an (F,)
            output each unit is its own "map" (receptive field: the whole image).
        k: images per map (default 9, as in Zeiler & Fergus fig. 2). mode: the projection's
            backward rule, "deconvnet" (default), "guided" or "gradient".
        batch_size: images per forward pass, in the scan and in the projections.
        channels: the feature maps to keep (default all).
        progress: a tqdm bar of the images scanned, on stderr.

    Returns a TopK (see its docstring): values and the dataset index of each image, the unit's
    position, its receptive-field box, the image patch and the projection cropped to that box.
    """
    check_mode(mode)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise MinicnnError(f"k must be a positive integer, got {k!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise MinicnnError(f"batch_size must be a positive integer, got {batch_size!r}")
    data = _Dataset(net, images, input_shape)
    out_shape = tuple(net.shapes(data.shape)[net.index(layer)])
    chans = np.arange(out_shape[0]) if channels is None else np.atleast_1d(np.asarray(channels))
    if not np.issubdtype(chans.dtype, np.integer) or chans.ndim != 1 or chans.size == 0:
        raise MinicnnError(f"channels must be a list of channel indices, got {channels!r}")
    if ((chans < 0) | (chans >= out_shape[0])).any():
        raise MinicnnError(f"channel out of range: layer {layer!r} has {out_shape[0]} channels")
    bar = tqdm(total=data.length, desc=f"top-{k} {layer}", unit="img", leave=False, disable=not progress)
    best = empty_partial(len(chans), k)
    for idx, batch in data.batches(batch_size):
        best = merge_partials(best, scan_batch(net, batch, idx, layer, chans, k), k)
        bar.update(len(batch))
    bar.close()
    if (best.index < 0).all():
        raise MinicnnError("no readable image in the dataset")
    return finish(net, data.shape, layer, chans, best, mode, batch_size, data.take, data.files)


class Partial(NamedTuple):
    """The running top-k of M feature maps over part of a dataset (what one shard of a job returns).

    values (M, k) float64, strongest first (-inf in an empty slot); index (M, k) int64, the image's
    position in the dataset (-1 in an empty slot); flatpos (M, k) int64, the flat (row-major)
    position of the strongest unit in the map.
    """

    values: np.ndarray
    index: np.ndarray
    flatpos: np.ndarray


def empty_partial(m: int, k: int) -> Partial:
    """The top-k of no image: every slot empty (the identity of merge_partials)."""
    return Partial(np.full((m, k), -np.inf), np.full((m, k), -1, np.int64), np.zeros((m, k), np.int64))


def merge_partials(a: Partial, b: Partial, k: int) -> Partial:
    """The top-k of the union of two partial results, per feature map.

    Order: larger value first, ties broken by the smaller image index, empty slots last. This is a
    total order on (value, image), so the merge is associative and commutative: merging shards in
    any grouping and order (any number of workers, any finishing order, a retried shard) gives the
    same arrays bit for bit. An image index must not appear in both (shards are disjoint).
    """
    v = np.concatenate([a.values, b.values], axis=1)
    i = np.concatenate([a.index, b.index], axis=1)
    p = np.concatenate([a.flatpos, b.flatpos], axis=1)
    tie = np.where(i < 0, np.iinfo(np.int64).max, i)  # empty slots after every image
    order = np.lexsort((tie, -v), axis=1)[:, :k]
    return Partial(*(np.take_along_axis(t, order, axis=1) for t in (v, i, p)))


def scan_batch(net, batch, indices, layer: str, chans, k: int) -> Partial:
    """The top-k of one batch (B, C, H, W) of images whose dataset positions are ``indices`` (B,):
    one forward pass to ``layer``, the maximum over positions of each kept map in each image."""
    a = net.run(net.xp.asarray(batch, dtype=net.dtype), stop=layer).output()
    best, arg = _per_image_max(a[:, chans])
    m, n = len(chans), len(indices)
    part = Partial(
        best.T, np.broadcast_to(np.asarray(indices, np.int64), (m, n)).copy(), arg.T.astype(np.int64)
    )
    return merge_partials(empty_partial(m, k), part, k)


def unit_positions(out_shape, flatpos) -> np.ndarray:
    """(M, k, 2) int64 (y, x) of flat positions (M, k) in a map of ``out_shape`` (C, h, w);
    zeros for a vector layer (C,)."""
    if len(out_shape) == 3:
        return np.stack(np.unravel_index(flatpos, out_shape[1:]), axis=-1).astype(np.int64)
    return np.zeros((*flatpos.shape, 2), dtype=np.int64)


def finish(net, shape, layer, chans, best: Partial, mode, batch_size, take, files=None) -> TopK:
    """Positions, boxes, patches and projections of a merged top-k; ``take(indices)`` -> images."""
    out_shape = tuple(net.shapes(shape)[net.index(layer)])
    position = unit_positions(out_shape, best.flatpos)
    boxes = unit_boxes(net, layer, shape, position)
    patches, projections = _project(net, take, layer, chans, best.index, position, boxes, mode, batch_size)
    return TopK(chans, best.values, best.index, position, boxes, patches, projections, files)


def unit_boxes(net, layer: str, shape, position) -> np.ndarray:
    """The receptive-field box of each unit of ``layer`` at ``position``, in input pixels.

    shape: the network's input (C, H, W); position: (..., 2) int (y, x) of units in the layer's
    output. Returns (..., 4) int64 (x0, y0, x1, y1), ends exclusive (``receptive_field``); a box may
    reach outside the image (padding). Every box is the whole image (0, 0, W, H) when the layer's
    units see all of it (after Flatten, Dense or global pooling).
    """
    rf = receptive_field(net, layer)
    position = np.asarray(position)
    if rf is None:
        whole = np.array([0, 0, shape[2], shape[1]], np.int64)
        return np.broadcast_to(whole, (*position.shape[:-1], 4)).copy()
    (rh, rw), (jh, jw), (oh, ow) = rf
    y0 = oh + position[..., 0] * jh
    x0 = ow + position[..., 1] * jw
    return np.stack([x0, y0, x0 + rw, y0 + rh], axis=-1).astype(np.int64)


def crop_boxes(images, boxes):
    """Cut boxes (B, 4) from images (B, C, H, W), zero outside the image -> (B, C, R_h, R_w)."""
    _, c, h, w = images.shape
    rh, rw = int(boxes[0, 3] - boxes[0, 1]), int(boxes[0, 2] - boxes[0, 0])
    pad = max(0, -int(boxes[:, :2].min()), int(boxes[:, 2].max()) - w, int(boxes[:, 3].max()) - h)
    padded = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.empty((len(images), c, rh, rw), dtype=images.dtype)
    for i, (x0, y0, _, _) in enumerate(boxes):
        out[i] = padded[i, :, y0 + pad : y0 + pad + rh, x0 + pad : x0 + pad + rw]
    return out


def _project(net, take, layer, chans, index, position, boxes, mode, batch_size):
    """Patches and cropped projections (M, k, C, R_h, R_w) for every filled slot, in batches of
    slots; ``take(indices)`` -> the images (B, C, H, W) at those dataset positions."""
    m, k = index.shape
    rows = np.argwhere(index >= 0)  # (slots, 2): (channel row, rank)
    patches = projections = None
    for s in range(0, len(rows), batch_size):
        r, q = rows[s : s + batch_size, 0], rows[s : s + batch_size, 1]
        pa, pr = project_slots(net, take(index[r, q]), layer, chans[r], position[r, q], boxes[r, q], mode)
        if patches is None:
            patches = np.zeros((m, k, *pa.shape[1:]), dtype=pa.dtype)
            projections = np.zeros_like(patches)
        patches[r, q], projections[r, q] = pa, pr
    return patches, projections


def project_slots(net, images, layer, channels, position, boxes, mode):
    """Project S single units back to pixels and crop them and their images to the units' boxes.

    images (S, C, H, W) on the host, channels (S,), position (S, 2) (y, x), boxes (S, 4) with
    equal sizes. Returns (patches, projections), each (S, C, R_h, R_w) of net.dtype.
    """
    xp = net.xp
    rec = net.run(xp.asarray(images, dtype=net.dtype), stop=layer)
    a = rec.output()
    dy = xp.zeros_like(a)
    sel = (xp.arange(len(images)), xp.asarray(np.asarray(channels)))
    if a.ndim == 4:
        sel += (xp.asarray(position[:, 0]), xp.asarray(position[:, 1]))
    dy[sel] = a[sel]  # the single strongest activation of the map, the rest of the layer zero
    proj = to_numpy(rec.backward(dy, mode=mode))
    images = np.asarray(images, dtype=net.dtype)
    return crop_boxes(images, boxes), crop_boxes(proj, boxes)
