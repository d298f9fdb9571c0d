"""A job whose result is one record per image (attribution maps, localisation boxes, sanity
similarities): one phase (``PerImagePhase``) run by the driver, its shards' records gathered by
dataset position, so their order never depends on the runner.

A worker function takes (job, shard, targets) and returns a dict of arrays whose first axis runs
over the shard's readable images (``index`` (n,) int64 among them) plus ``bad_index`` / ``bad_reason``.
The client hands each shard's dict to ``deliver`` (which may write one file per image) before the
driver saves the arrays named in ``keep`` as the shard's file, so a finished shard file means its
images' files are all written.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.jobs.driver import Driver, Phase
from minicnn.jobs.shards import Shard, plan


def read_shard_images(job, shard):
    """Worker helper: (network, ok (n,) int64, images (n, C, H, W), bad) of a whole shard at once
    (a per-image job's shards are small: ``--shard-size``)."""
    from minicnn.jobs.shards import check_code
    from minicnn.jobs.worker import network

    check_code(job.code)
    net = network(job.weights, job.model_sha256, job.device)
    ok, images, bad = job.dataset.read(range(shard.start, shard.stop))
    return net, ok, images, bad


class PerImagePhase(Phase):
    """The spec of a per-image job: shards of images -> records by dataset position.

    worker: fn((job, shard, targets)) -> dict (see the module docstring); job: a frozen dataclass
    with ``dataset`` and ``provenance(phase, shard)``; name: the shard files' prefix; keep: the
    arrays kept besides ``index``; targets: (N,) int64 per dataset position, or None; deliver:
    fn(arrays) called with each fresh result before its shard file is saved.
    """

    def __init__(self, worker, job, name: str, keep: tuple, targets, shard_size: int, deliver=None):
        self.worker, self.job, self.name, self.desc = worker, job, name, name
        self.keep_names, self.targets, self.deliver = ("index", *keep), targets, deliver
        self.shards = plan(len(job.dataset), shard_size)
        self.parts: list = []

    def task(self, shard: Shard):
        part = replace(self.job, dataset=self.job.dataset.subset(range(shard.start, shard.stop)))
        targets = None if self.targets is None else np.asarray(self.targets[shard.start : shard.stop])
        return part, shard, targets

    def provenance(self, shard: Shard) -> dict:
        return self.job.provenance(self.name, shard)

    def keep(self, shard: Shard, arrays: dict) -> dict:
        if self.deliver is not None:
            self.deliver(arrays)
        return {name: arrays[name] for name in self.keep_names}

    def merge(self, shard: Shard, arrays: dict) -> None:
        self.parts.append({name: arrays[name] for name in self.keep_names})

    def gathered(self) -> dict:
        """The kept arrays of every shard concatenated in dataset order."""
        index = np.concatenate([p["index"] for p in self.parts])
        order = np.argsort(index, kind="stable")
        return {name: np.concatenate([p[name] for p in self.parts])[order] for name in self.keep_names}


def run_per_image(fn, job, work, workers, *, phase: str, keep: tuple, targets=None,
                  shard_size: int = 64, resume: bool = False, skip_bad: bool = False, deliver=None,
                  say=print):  # fmt: skip
    """Run ``fn`` over every shard of ``job.dataset``; returns (arrays, bad): the ``keep`` arrays of
    every shard concatenated in dataset order (``index`` first), and (id, reason) per unreadable image.

    job: a frozen dataclass with ``dataset`` and ``provenance(phase, shard)``; targets: (N,) int64
    per dataset position, or None (each task then picks its own, e.g. the predicted class).
    """
    spec = PerImagePhase(fn, job, phase, keep, targets, shard_size, deliver)
    driver = Driver(workers, work, resume, skip_bad, say)
    driver.run(spec)
    bad = driver.unreadable(job.dataset)
    if sum(len(p["index"]) for p in spec.parts) == 0:
        raise MinicnnError(f"no readable image in {job.dataset.path}")
    return spec.gathered(), bad
