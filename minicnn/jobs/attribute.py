"""Attribution maps over a dataset, one result file per image: the saliency map of each image's
target class (Simonyan et al. 2013, sec. 3.1: max over channels of |dS_c/dI|), optionally as
SmoothGrad (Smilkov et al. 2017) or gradient x input (Shrikumar et al. 2016), from ``tools.saliency``.

Workers compute a shard's maps and return them; the client writes each image's .npz (atomically)
before it saves the shard's file, so a finished shard means all of its images' files exist, and
``--resume`` never leaves an image without its map.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minicnn.jobs.dataset import Dataset
from minicnn.jobs.perimage import bad_arrays, read_shard_images
from minicnn.jobs.shards import Shard, code_version


@dataclass(frozen=True)
class AttributeJob:
    """The model file (path, sha256), device and dataset; ``settings``: the keyword arguments of
    ``tools.saliency.saliency`` as sorted (name, value) pairs (times_input, samples, noise, seed)."""

    weights: str
    model_sha256: str
    device: str
    dataset: Dataset
    settings: tuple = ()

    def provenance(self, phase: str, shard: Shard) -> dict:
        return {
            "job": phase,
            "model_sha256": self.model_sha256,
            "settings": dict(self.settings),
            "shard": [shard.start, shard.stop],
            "images": self.dataset.fingerprint(shard.start, shard.stop),
            "code": code_version(),
        }


def saliency_shard(task) -> dict:
    """Worker: (job, shard, targets (n,) int64 or None for the predicted class) -> index (m,),
    maps (m, H, W) float32, target (m,) int64 of the readable images."""
    from minicnn.backend import to_numpy
    from minicnn.tools.saliency import saliency

    job, shard, targets = task
    net, ok, images, bad = read_shard_images(job, shard)
    h, w = job.dataset.shape[1:]
    maps, chosen = np.zeros((len(ok), h, w), dtype=np.float32), np.zeros(len(ok), dtype=np.int64)
    if len(ok):
        x = net.xp.asarray(images, dtype=net.dtype)
        rec = net.run(x)
        chosen = to_numpy(rec.output()).argmax(axis=1).astype(np.int64)
        if targets is not None:
            chosen = np.asarray(targets, dtype=np.int64)[ok - shard.start]
        record = rec if not dict(job.settings).get("samples") else None
        maps = to_numpy(saliency(net, x, [int(t) for t in chosen], record=record, **dict(job.settings)))
        maps = maps.astype(np.float32)
    return {"index": ok, "maps": maps, "target": chosen, **bad_arrays(bad)}


def result_path(folder, image_id: str) -> Path:
    """Where an image's map goes: its id with .npz, subfolders kept, odd characters replaced."""
    parts = [
        re.sub(r"[^A-Za-z0-9._-]+", "_", p).strip("_") or "x" for p in Path(image_id).with_suffix("").parts
    ]
    return Path(folder, *parts).with_suffix(".npz")


def writer(job: AttributeJob, folder, meta: dict):
    """The client's ``deliver``: write each image's map as its own .npz (map (H, W) float32,
    target, and the metadata: image id, model, method, settings)."""
    from minicnn.io.atomic import atomic_path

    def deliver(arrays):
        for j, i in enumerate(arrays["index"].tolist()):
            image_id = job.dataset.id_of(i)
            path = result_path(folder, image_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            info = {**meta, "image": image_id, "target_index": int(arrays["target"][j])}
            with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
                np.savez_compressed(f, saliency=arrays["maps"][j], target=arrays["target"][j],
                                    meta=np.asarray(json.dumps(info, sort_keys=True)))  # fmt: skip

    return deliver
