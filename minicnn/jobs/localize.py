"""Localisation evaluation over a labelled dataset (Simonyan et al. 2013, sec. 3.1): the saliency
map of each image's class, a graph cut from its seeds (``tools.localize``), the box of the largest
foreground component, and its intersection over union with the true box. Reported: the IoU of every
image and the fraction of images with IoU >= 0.5 (the ILSVRC localisation criterion).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from minicnn.jobs.dataset import Dataset
from minicnn.jobs.driver import bad_arrays
from minicnn.jobs.perimage import read_shard_images
from minicnn.jobs.shards import Shard, code_version, provenance


@dataclass(frozen=True)
class LocalizeJob:
    """The model file (path, sha256), device and dataset; the evaluation file's hash (its targets
    travel with each task)."""

    weights: str
    model_sha256: str
    device: str
    dataset: Dataset
    annotations_sha256: str
    code: str = field(default_factory=code_version)  # the client's, checked by each worker

    def provenance(self, phase: str, shard: Shard) -> dict:
        images = self.dataset.fingerprint(range(shard.start, shard.stop))
        return provenance(phase, self.model_sha256, shard, images, annotations_sha256=self.annotations_sha256)


def localize_shard(task) -> dict:
    """Worker: (job, shard, targets (n,) int64 with -1 = predicted class) -> index (m,), boxes
    (m, 4) int64 (x0, y0, x1, y1), target (m,) and predicted (m,) classes of the readable images."""
    from minicnn.backend import to_numpy
    from minicnn.tools.localize import localize
    from minicnn.tools.saliency import saliency

    job, shard, targets = task
    net, ok, images, bad = read_shard_images(job, shard)
    boxes = np.zeros((len(ok), 4), dtype=np.int64)
    predicted = np.zeros(len(ok), dtype=np.int64)
    chosen = np.zeros(len(ok), dtype=np.int64)
    if len(ok):
        x = net.xp.asarray(images, dtype=net.dtype)
        rec = net.run(x)
        predicted = to_numpy(rec.output()).argmax(axis=1).astype(np.int64)
        wanted = np.asarray(targets, dtype=np.int64)[ok - shard.start]
        chosen = np.where(wanted >= 0, wanted, predicted)
        sal = to_numpy(saliency(net, x, [int(t) for t in chosen], record=rec))
        boxes = localize(net, x, [int(t) for t in chosen], saliency_map=sal, progress=False).boxes
    return {"index": ok, "boxes": boxes, "target": chosen, "predicted": predicted, **bad_arrays(bad)}
