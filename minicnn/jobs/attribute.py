"""Attribution maps over a dataset, one result file per image, by any method of the registry
(minicnn/tools/methods.py: saliency, Grad-CAM, occlusion, LRP, Integrated Gradients, ...), each
computed by its tool on a shard's batch with the job's settings (the method's keyword options).

Workers compute a shard's maps and return them; the client writes each image's .npz (atomically)
before it saves the shard's file, so a finished shard means all of its images' files exist, and
``--resume`` never leaves an image without its map.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minicnn.jobs.dataset import Dataset
from minicnn.jobs.driver import bad_arrays
from minicnn.jobs.perimage import read_shard_images
from minicnn.jobs.shards import Shard, code_version, provenance
from minicnn.tools.methods import get


@dataclass(frozen=True)
class AttributeJob:
    """The model file (path, sha256), device and dataset; ``method``: a name of the registry
    (tools/methods.py, an alias included); ``settings``: the method's keyword options as sorted
    (name, value) pairs."""

    weights: str
    model_sha256: str
    device: str
    dataset: Dataset
    settings: tuple = ()
    method: str = "saliency"
    code: str = field(default_factory=code_version)  # the client's, checked by each worker

    def provenance(self, phase: str, shard: Shard) -> dict:
        images = self.dataset.fingerprint(range(shard.start, shard.stop))
        return provenance(phase, self.model_sha256, shard, images, method=self.method,
                          settings=dict(self.settings))  # fmt: skip


def attribute_shard(task) -> dict:
    """Worker: (job, shard, targets (n,) int64 or None for the predicted class) -> index (m,),
    maps (m, ...) float32 (the method's map of each image), target (m,) int64, of the readable images."""
    from minicnn.backend import to_numpy

    job, shard, targets = task
    net, ok, images, bad = read_shard_images(job, shard)
    maps, chosen = np.zeros((0,), dtype=np.float32), np.zeros(len(ok), dtype=np.int64)
    if len(ok):
        x = net.xp.asarray(images, dtype=net.dtype)
        rec = net.run(x)
        chosen = to_numpy(rec.output()).argmax(axis=1).astype(np.int64)
        if targets is not None:
            chosen = np.asarray(targets, dtype=np.int64)[ok - shard.start]
        method = get(job.method)
        maps = method(net, x, [int(t) for t in chosen], record=rec, **dict(job.settings))
        maps = to_numpy(maps).astype(np.float32)
    return {"index": ok, "maps": maps, "target": chosen, **bad_arrays(bad)}


def result_path(folder, image_id: str) -> Path:
    """Where an image's map goes: its id with .npz, subfolders kept, odd characters replaced."""
    parts = [
        re.sub(r"[^A-Za-z0-9._-]+", "_", p).strip("_") or "x" for p in Path(image_id).with_suffix("").parts
    ]
    return Path(folder, *parts).with_suffix(".npz")


def writer(job: AttributeJob, folder, meta: dict):
    """The client's ``deliver``: write each image's map as its own .npz (the map under the method's
    name, float32; target; and the metadata: image id, model, method, settings)."""
    from minicnn.io.atomic import atomic_path

    def deliver(arrays):
        for j, i in enumerate(arrays["index"].tolist()):
            image_id = job.dataset.id_of(i)
            path = result_path(folder, image_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            info = {**meta, "image": image_id, "target_index": int(arrays["target"][j])}
            with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
                np.savez_compressed(f, **{job.method: arrays["maps"][j]}, target=arrays["target"][j],
                                    meta=np.asarray(json.dumps(info, sort_keys=True)))  # fmt: skip

    return deliver
