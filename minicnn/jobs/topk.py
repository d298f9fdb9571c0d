"""Top-k projections over a dataset as a sharded job (Zeiler & Fergus 2013, sec. 2.1 and fig. 2).

Two phases, each cut into shards that any runner can run:

1. scan: each shard of images returns, for every chosen feature map, its k strongest images
   (``tools.topk.scan_batch``); the shards' results are merged with ``tools.topk.merge_partials``,
   whose total order (value, then image index) makes the merge associative and commutative;
2. project: the M x k winning units, in fixed chunks of slots, are projected back to pixels and
   cropped to their receptive fields (``tools.topk.project_slots``).

A worker holds one batch of images and one shard's k-per-map result at a time, so its memory does
not grow with the dataset. Each shard's result is saved atomically with its provenance
(``shards.py``) as it arrives, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.jobs.dataset import Dataset
from minicnn.jobs.runners import Session
from minicnn.jobs.shards import (
    Shard,
    check_code,
    code_version,
    load_shard,
    plan,
    provenance,
    save_shard,
    shard_path,
)
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

    def provenance(self, phase: str, shard: Shard, **extra) -> dict:
        """What produced a shard's file: compared in full by --resume."""
        images = self.dataset.fingerprint(shard.start, shard.stop) if phase == "scan" else None
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
    return {
        "values": best.values,
        "index": best.index,
        "flatpos": best.flatpos,
        "bad_index": np.asarray([i for i, _ in bad], dtype=np.int64),
        "bad_reason": np.asarray([r for _, r in bad], dtype=str),
    }


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


def _slots_hash(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def run_topk(job: TopkJob, net, work, session: Session, shard_size: int = 256, resume: bool = False,
             skip_bad: bool = False, say=print):  # fmt: skip
    """Run the job; returns (TopK, bad) with bad the list of (image id, reason) left out.

    net: the client's own copy of the network (shapes and receptive fields; the workers load
    theirs). session: the runner's open Session (jobs.runners). work: the folder of shard files.
    resume: reuse shard files whose provenance matches.
    skip_bad: without it, an unreadable image ends the run with one line once every shard is done
    (the finished shards are kept, so ``--resume --skip-bad`` completes it at once).
    """
    from minicnn.tools.topk import Partial, TopK, _boxes, empty_partial, merge_partials, unit_positions

    work = Path(work)
    m, k, data = len(job.channels), job.k, job.dataset
    shards = plan(len(data), shard_size)
    state = {"best": empty_partial(m, k), "bad": {}}

    def absorb(shard, arrays):
        part = Partial(arrays["values"], arrays["index"], arrays["flatpos"])
        state["best"] = merge_partials(state["best"], part, k)
        for i, reason in zip(arrays["bad_index"].tolist(), arrays["bad_reason"].tolist()):
            state["bad"][int(i)] = str(reason)

    todo = []
    for shard in shards:
        got = load_shard(shard_path(work, "scan", shard), job.provenance("scan", shard)) if resume else None
        if got is None:
            todo.append(shard)
        else:
            absorb(shard, got)
    if resume:
        say(f"  resumed: {len(shards) - len(todo)} of {len(shards)} scan shard(s) already done in {work}")

    def scanned(task, arrays):
        shard = task[1]
        save_shard(shard_path(work, "scan", shard), arrays, job.provenance("scan", shard))
        absorb(shard, arrays)

    tasks = [(_for_shard(job, shard), shard) for shard in todo]
    session.run(scan_shard, tasks, scanned, desc=f"top-{k} scan", done=len(shards) - len(todo))

    bad = [(data.ids[i], state["bad"][i]) for i in sorted(state["bad"])]
    for name, reason in bad:
        say(f"  unreadable image {name}: {reason}")
    if bad and not skip_bad:
        raise MinicnnError(
            f"{len(bad)} unreadable image(s), first {bad[0][0]}: {bad[0][1]}; --skip-bad leaves them out "
            "(finished shards are kept: add --resume)"
        )
    best = state["best"]
    if (best.index < 0).all():
        raise MinicnnError(f"no readable image in {data.path}")

    out_shape = tuple(net.shapes(data.shape)[net.index(job.layer)])
    position = unit_positions(out_shape, best.flatpos)
    boxes = _boxes(net, job.layer, data.shape, position)
    rows = np.argwhere(best.index >= 0)  # (slots, 2): (channel row, rank), row-major: a fixed order
    chans = np.asarray(job.channels, dtype=np.int64)
    c, rh, rw = data.shape[0], int(boxes[0, 0, 3] - boxes[0, 0, 1]), int(boxes[0, 0, 2] - boxes[0, 0, 0])
    patches = np.zeros((m, k, c, rh, rw), dtype=net.dtype)
    projections = np.zeros_like(patches)

    def slots(chunk):
        r, q = rows[chunk.start : chunk.stop, 0], rows[chunk.start : chunk.stop, 1]
        return r, q, (chans[r], best.index[r, q], position[r, q], boxes[r, q])

    def proj_provenance(chunk):
        return job.provenance("project", chunk, slots=_slots_hash(*slots(chunk)[2]))

    def place(chunk, arrays):
        r, q, _ = slots(chunk)
        patches[r, q], projections[r, q] = arrays["patches"], arrays["projections"]

    chunks = plan(len(rows), job.batch_size)
    todo = []
    for chunk in chunks:
        got = load_shard(shard_path(work, "project", chunk), proj_provenance(chunk)) if resume else None
        if got is None:
            todo.append(chunk)
        else:
            place(chunk, got)

    def projected(task, arrays):
        chunk = task[1]
        save_shard(shard_path(work, "project", chunk), arrays, proj_provenance(chunk))
        place(chunk, arrays)

    tasks = []
    for chunk in todo:
        info = slots(chunk)[2]
        tasks.append((_for_images(job, info[1]), chunk, info))
    session.run(project_chunk, tasks, projected, desc=f"top-{k} projections", done=len(chunks) - len(todo))
    result = TopK(chans, best.values, best.index, position, boxes, patches, projections, None)
    return result, bad


def _for_shard(job: TopkJob, shard: Shard) -> TopkJob:
    """The job with only the shard's own images (what is sent to a worker)."""
    from dataclasses import replace

    return replace(job, dataset=job.dataset.subset(range(shard.start, shard.stop)))


def _for_images(job: TopkJob, index) -> TopkJob:
    from dataclasses import replace

    return replace(job, dataset=job.dataset.subset(sorted(set(int(i) for i in index))))
