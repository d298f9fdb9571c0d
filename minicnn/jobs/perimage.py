"""A job whose result is one record per image (attribution maps, localisation boxes): the shards'
records are gathered by dataset position, so their order never depends on the runner.

A worker function takes (job, shard, targets) and returns a dict of arrays whose first axis runs
over the shard's readable images (``index`` (n,) int64 among them) plus ``bad_index`` / ``bad_reason``.
The client hands each shard's dict to ``deliver`` (which may write one file per image) and then saves
the arrays named in ``keep`` as the shard's file, so a finished shard file means its images' files
are all written.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.jobs.runners import Session
from minicnn.jobs.shards import load_shard, plan, save_shard, shard_path


def read_shard_images(job, shard):
    """Worker helper: (network, ok (n,) int64, images (n, C, H, W), bad) of a whole shard at once
    (a per-image job's shards are small: ``--shard-size``)."""
    from minicnn.jobs.shards import check_code
    from minicnn.jobs.worker import network

    check_code(job.code)
    net = network(job.weights, job.model_sha256, job.device)
    ok, images, bad = job.dataset.read(range(shard.start, shard.stop))
    return net, ok, images, bad


def bad_arrays(bad) -> dict:
    return {
        "bad_index": np.asarray([i for i, _ in bad], dtype=np.int64),
        "bad_reason": np.asarray([r for _, r in bad], dtype=str),
    }


def run_per_image(fn, job, work, session: Session, *, phase: str, keep: tuple, targets=None,
                  shard_size: int = 64, resume: bool = False, skip_bad: bool = False, deliver=None,
                  say=print):  # fmt: skip
    """Run ``fn`` over every shard of ``job.dataset``; returns (arrays, bad): the ``keep`` arrays of
    every shard concatenated in dataset order (``index`` first), and (id, reason) per unreadable image.

    job: a frozen dataclass with ``dataset`` and ``provenance(phase, shard)``; targets: (N,) int64
    per dataset position, or None (each task then picks its own, e.g. the predicted class).
    """
    work = Path(work)
    data = job.dataset
    shards = plan(len(data), shard_size)
    parts, bad = [], {}

    def absorb(arrays):
        parts.append({name: arrays[name] for name in ("index", *keep)})
        for i, reason in zip(arrays["bad_index"].tolist(), arrays["bad_reason"].tolist()):
            bad[int(i)] = str(reason)

    todo = []
    for shard in shards:
        got = load_shard(shard_path(work, phase, shard), job.provenance(phase, shard)) if resume else None
        if got is None:
            todo.append(shard)
        else:
            absorb(got)
    if resume:
        say(f"  resumed: {len(shards) - len(todo)} of {len(shards)} shard(s) already done in {work}")

    def finished(task, arrays):
        shard = task[1]
        if deliver is not None:
            deliver(arrays)
        small = {name: arrays[name] for name in ("index", *keep, "bad_index", "bad_reason")}
        save_shard(shard_path(work, phase, shard), small, job.provenance(phase, shard))
        absorb(small)

    tasks = []
    for shard in todo:
        part = replace(job, dataset=data.subset(range(shard.start, shard.stop)))
        tasks.append(
            (part, shard, None if targets is None else np.asarray(targets[shard.start : shard.stop]))
        )
    session.run(fn, tasks, finished, desc=phase, done=len(shards) - len(todo))

    bad_list = [(data.ids[i], bad[i]) for i in sorted(bad)]
    for name, reason in bad_list:
        say(f"  unreadable image {name}: {reason}")
    if bad_list and not skip_bad:
        raise MinicnnError(
            f"{len(bad_list)} unreadable image(s), first {bad_list[0][0]}: {bad_list[0][1]}; --skip-bad "
            "leaves them out (finished shards are kept: add --resume)"
        )
    if not parts or sum(len(p["index"]) for p in parts) == 0:
        raise MinicnnError(f"no readable image in {data.path}")
    index = np.concatenate([p["index"] for p in parts])
    order = np.argsort(index, kind="stable")
    arrays = {name: np.concatenate([p[name] for p in parts])[order] for name in ("index", *keep)}
    return arrays, bad_list
