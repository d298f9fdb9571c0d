"""Top-k projections over a dataset as a sharded job (Zeiler & Fergus 2013, sec. 2.1 and fig. 2).

Two phases, each cut into shards that any runner can run:

1. scan: each shard of images returns, for every chosen feature map, its k strongest images
   (``tools.topk.scan_batch``); the shards' results are merged with ``tools.topk.merge_partials``,
   whose total order (value, then image index) makes the merge associative and commutative;
2. project: the M x k winning units, in fixed chunks of slots, are projected back to pixels and
   cropped to their receptive fields (``tools.topk.project_slots``).

A worker holds one batch of images and one shard's k-per-map result at a time, so its memory does
not grow with the dataset. Each phase is a spec (``ScanPhase``, ``ProjectPhase``) that the one
driver (``driver.py``) plans, resumes, runs, saves shard by shard and merges.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.jobs.dataset import Dataset
from minicnn.jobs.driver import Driver, Phase, bad_arrays
from minicnn.jobs.shards import Shard, check_code, code_version, plan, provenance
from minicnn.jobs.worker import network


@dataclass(frozen=True)
class TopkJob:
    """Everything a worker needs for one shard: the model file (path and sha256), the device, the
    dataset, the layer, k, the projection rule, the channels (M,) and the batch size."""

    weights: str
    model_sha256: str
    device: str
    dataset: Dataset
    layer: str
    k: int
    mode: str
    channels: tuple
    batch_size: int
    code: str = field(default_factory=code_version)  # the client's, checked by each worker

    def provenance(self, phase: str, shard: Shard, images: str, **extra) -> dict:
        """What produced a shard's file (``images``: the fingerprint of the images it read):
        compared in full by --resume."""
        return provenance(f"topk-{phase}", self.model_sha256, shard, images, layer=self.layer, k=self.k,
                          mode=self.mode, channels=list(self.channels), batch_size=self.batch_size,
                          **extra)  # fmt: skip


def scan_shard(task) -> dict:
    """Worker: (job, shard with its own images) -> the shard's top-k (values, index, flatpos, each
    (M, k)) and its unreadable images (bad_index (b,), bad_reason (b,) str)."""
    from minicnn.tools.topk import empty_partial, merge_partials, scan_batch

    job, shard = task
    check_code(job.code)
    net = network(job.weights, job.model_sha256, job.device)
    chans = np.asarray(job.channels, dtype=np.int64)
    best = empty_partial(len(chans), job.k)
    bad = []
    for s in range(shard.start, shard.stop, job.batch_size):
        ok, images, unread = job.dataset.read(range(s, min(s + job.batch_size, shard.stop)))
        bad += unread
        if len(ok):
            best = merge_partials(best, scan_batch(net, images, ok, job.layer, chans, job.k), job.k)
    return {"values": best.values, "index": best.index, "flatpos": best.flatpos, **bad_arrays(bad)}


def project_chunk(task) -> dict:
    """Worker: (job, chunk, slots) with slots = (channel (S,), image index (S,), position (S, 2),
    boxes (S, 4)) -> patches and projections, each (S, C, R_h, R_w)."""
    from minicnn.tools.topk import project_slots

    job, _, (chans, index, position, boxes) = task
    check_code(job.code)
    net = network(job.weights, job.model_sha256, job.device)
    ok, images, bad = job.dataset.read(index)
    if bad:
        i, reason = bad[0]
        raise MinicnnError(f"image {job.dataset.id_of(i)} was read in the scan but not now: {reason}")
    patches, projections = project_slots(net, images, job.layer, chans, position, boxes, job.mode)
    return {"patches": patches, "projections": projections}


class ScanPhase(Phase):
    """Phase 1: each shard of images -> its top-k per map; merged with ``merge_partials``."""

    name = "scan"
    worker = staticmethod(scan_shard)

    def __init__(self, job: TopkJob, shard_size: int):
        from minicnn.tools.topk import empty_partial

        self.job, self.desc = job, f"top-{job.k} scan"
        self.shards = plan(len(job.dataset), shard_size)
        self.best = empty_partial(len(job.channels), job.k)

    def task(self, shard: Shard):
        return replace(self.job, dataset=self.job.dataset.subset(range(shard.start, shard.stop))), shard

    def provenance(self, shard: Shard) -> dict:
        return self.job.provenance(
            "scan", shard, self.job.dataset.fingerprint(range(shard.start, shard.stop))
        )

    def merge(self, shard: Shard, arrays: dict) -> None:
        from minicnn.tools.topk import Partial, merge_partials

        part = Partial(arrays["values"], arrays["index"], arrays["flatpos"])
        self.best = merge_partials(self.best, part, self.job.k)


class ProjectPhase(Phase):
    """Phase 2: the filled slots of the merged top-k (M, k), row-major (a fixed order), in chunks of
    ``batch_size`` slots -> patches and projections placed at their (channel row, rank)."""

    name = "project"
    worker = staticmethod(project_chunk)

    def __init__(self, job: TopkJob, best, position, boxes, dtype):
        self.job, self.desc = job, f"top-{job.k} projections"
        self.index, self.position, self.boxes = best.index, position, boxes
        self.rows = np.argwhere(best.index >= 0)  # (slots, 2): (channel row, rank)
        self.shards = plan(len(self.rows), job.batch_size)
        m, k, c = len(job.channels), job.k, job.dataset.shape[0]
        rh, rw = int(boxes[0, 0, 3] - boxes[0, 0, 1]), int(boxes[0, 0, 2] - boxes[0, 0, 0])
        self.patches = np.zeros((m, k, c, rh, rw), dtype=dtype)
        self.projections = np.zeros_like(self.patches)

    def slots(self, chunk: Shard):
        """(rows (S,), ranks (S,), (channel (S,), image index (S,), position (S, 2), boxes (S, 4)))."""
        r, q = self.rows[chunk.start : chunk.stop, 0], self.rows[chunk.start : chunk.stop, 1]
        chans = np.asarray(self.job.channels, dtype=np.int64)
        return r, q, (chans[r], self.index[r, q], self.position[r, q], self.boxes[r, q])

    def task(self, chunk: Shard):
        info = self.slots(chunk)[2]
        images = sorted(set(int(i) for i in info[1]))
        return replace(self.job, dataset=self.job.dataset.subset(images)), chunk, info

    def provenance(self, chunk: Shard) -> dict:
        info = self.slots(chunk)[2]
        images = self.job.dataset.fingerprint(sorted(set(int(i) for i in info[1])))
        return self.job.provenance("project", chunk, images, slots=_slots_hash(*info))

    def merge(self, chunk: Shard, arrays: dict) -> None:
        r, q, _ = self.slots(chunk)
        self.patches[r, q], self.projections[r, q] = arrays["patches"], arrays["projections"]


def _slots_hash(*arrays) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def run_topk(job: TopkJob, net, work, workers, shard_size: int = 256, resume: bool = False,
             skip_bad: bool = False, say=print):  # fmt: skip
    """Run the job; returns (TopK, bad) with bad the list of (image id, reason) left out.

    net: the client's own copy of the network (shapes and receptive fields; the workers load
    theirs). workers: the runner's open Workers (jobs.runners). work: the folder of shard files.
    resume: reuse shard files whose provenance matches.
    skip_bad: without it, an unreadable image ends the run with one line once every shard is done
    (the finished shards are kept, so ``--resume --skip-bad`` completes it at once).
    """
    from minicnn.tools.topk import TopK, unit_boxes, unit_positions

    driver = Driver(workers, work, resume, skip_bad, say)
    data = job.dataset
    scan = ScanPhase(job, shard_size)
    driver.run(scan)
    bad = driver.unreadable(data)
    if (scan.best.index < 0).all():
        raise MinicnnError(f"no readable image in {data.path}")
    out_shape = tuple(net.shapes(data.shape)[net.index(job.layer)])
    position = unit_positions(out_shape, scan.best.flatpos)
    boxes = unit_boxes(net, job.layer, data.shape, position)
    project = ProjectPhase(job, scan.best, position, boxes, net.dtype)
    driver.run(project)
    chans = np.asarray(job.channels, dtype=np.int64)
    result = TopK(chans, scan.best.values, scan.best.index, position, boxes, project.patches,
                  project.projections, None)  # fmt: skip
    return result, bad
