"""Attribution maps over a dataset, one result file per image, from the tools:

- saliency: max over channels of |dS_c/dI| (Simonyan et al. 2013, sec. 3.1), optionally SmoothGrad
  (Smilkov et al. 2017) or gradient x input (Shrikumar et al. 2016) (``tools.saliency``);
- cam: class activation maps of a network with global average pooling (Zhou et al. 2016);
- gradcam: Grad-CAM at a layer (Selvaraju et al. 2017) (both ``tools.cam``);
- occlusion: the drop of the class score under a sliding grey square, per pixel (Zeiler & Fergus
  2013, sec. 4.2) (``tools.occlusion``);
- reconstruct: the DeconvNet / guided / gradient projection of a layer's strongest unit to pixels
  (Zeiler & Fergus 2013, sec. 2.1) (``tools.reconstruct``).

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


@dataclass(frozen=True)
class AttributeJob:
    """The model file (path, sha256), device and dataset; ``method``: a key of METHODS; ``settings``:
    the method's keyword arguments as sorted (name, value) pairs (see METHODS)."""

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


def _saliency(net, x, targets, rec, times_input=False, samples=0, seed=0):
    from minicnn.tools.saliency import saliency

    record = rec if not samples else None  # SmoothGrad runs its own noisy passes
    return saliency(
        net, x, targets, record=record, times_input=times_input, samples=samples, seed=seed, progress=False
    )  # one shard of the job, whose runner shows the progress


def _cam(net, x, targets, rec):
    from minicnn.tools.cam import cam

    return cam(net, x, targets, record=rec)


def _gradcam(net, x, targets, rec, layer=None):
    from minicnn.tools.cam import grad_cam

    return grad_cam(net, x, targets, layer=layer, record=rec)


def _occlusion(net, x, targets, rec, size=8, stride=4):
    from minicnn.tools.occlusion import occlusion

    return occlusion(net, x, targets, size=size, stride=stride, progress=False, record=rec).attribution


def _reconstruct(net, x, targets, rec, layer=None, mode="deconvnet"):
    from minicnn.tools.reconstruct import reconstruct

    return reconstruct(net, x, layer, mode=mode, record=rec)


# method -> fn(net, x (n, C, H, W), targets (list of n ints), record, **settings) -> (n, ...) maps
METHODS = {
    "saliency": _saliency,
    "cam": _cam,
    "gradcam": _gradcam,
    "occlusion": _occlusion,
    "reconstruct": _reconstruct,
}


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
        fn = METHODS[job.method]
        maps = to_numpy(fn(net, x, [int(t) for t in chosen], rec, **dict(job.settings))).astype(np.float32)
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
