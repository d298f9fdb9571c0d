"""The one driver of every sharded job: plan, resume, run, save, merge, and unreadable images.

A job is written as one or more phases (``Phase``): what a shard's task is, the worker function that
computes it, what produced its result (the provenance) and how a result is folded into the job's
answer. The driver does the rest, the same way for every job:

1. plan: the phase's fixed shards (``shards.plan``: they depend on the dataset and the shard size
   only, never on the runner);
2. resume: with ``resume``, a shard whose file holds the same provenance is merged from the file and
   not run again; any difference (model, settings, images, code) means it is run again;
3. run: the other shards go to the runner's open workers (``runners.Workers``), which hand each result
   back on the client as it finishes, in any order;
4. save, then merge: each result is first delivered (``Phase.keep``: a per-image job writes its
   images' files here), then saved atomically as the shard's file, then merged. A shard file
   therefore exists only when everything its shard produced is on disk, and an interrupted run loses
   at most the shards that were running;
5. unreadable images: a worker reports the images it could not read (``bad_index``, ``bad_reason``)
   instead of raising; the driver gathers them from every shard and, once the phase is done, either
   reports them (``skip_bad``) or ends the run with one line naming the first (``unreadable``), the
   finished shards kept so that ``--resume --skip-bad`` completes the run at once.

Merges must be associative and commutative (a phase's ``merge`` may be called in any shard order),
which is what makes the answer independent of the number of workers and of the finishing order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.jobs.shards import Shard, load_shard, save_shard, shard_path


def bad_arrays(bad) -> dict:
    """A worker's unreadable images [(dataset position, reason)] as the two arrays every shard
    result carries: bad_index (b,) int64 and bad_reason (b,) str."""
    return {
        "bad_index": np.asarray([i for i, _ in bad], dtype=np.int64),
        "bad_reason": np.asarray([r for _, r in bad], dtype=str),
    }


class Phase:
    """One pass of a job over fixed shards: the spec the driver runs (subclass it).

    name: the shard files' prefix (``<name>-<start>-<stop>.npz``); desc: the progress bar's label;
    shards: the plan (``shards.plan``); worker: a module-level function task -> dict of arrays (it is
    pickled to worker processes), run on a worker.
    """

    name: str = "shards"
    desc: str = "shards"
    shards: list  # set by each spec's __init__
    worker = None  # set by each spec

    def task(self, shard: Shard):
        """What the worker receives for ``shard`` (small: only the shard's own image ids)."""
        raise NotImplementedError

    def provenance(self, shard: Shard) -> dict:
        """What produced the shard's result (``shards.provenance``), compared in full by resume."""
        raise NotImplementedError

    def keep(self, shard: Shard, arrays: dict) -> dict:
        """Deliver a fresh result (e.g. write per-image files) and return what its shard file
        keeps; called on the client before the file is saved. Default: keep everything."""
        return arrays

    def merge(self, shard: Shard, arrays: dict) -> None:
        """Fold one shard's kept arrays into the phase's answer (any shard order)."""
        raise NotImplementedError


class Driver:
    """Runs phases on one open set of workers: ``Driver(workers, work, ...).run(phase)``.

    workers: an open ``runners.Workers``; work: the folder of the shard files; resume: reuse shard
    files whose provenance matches; skip_bad: leave unreadable images out (each reported) instead of
    ending the run; say: where progress lines go (the report's printer).
    """

    def __init__(self, workers, work, resume: bool = False, skip_bad: bool = False, say=print):
        self.workers, self.work, self.resume = workers, Path(work), resume
        self.skip_bad, self.say = skip_bad, say
        self.bad: dict = {}  # dataset position -> reason, from every shard of every phase

    def run(self, phase: Phase) -> None:
        """Plan, resume, run, save and merge every shard of ``phase``."""
        # the provenance is computed once per shard: it hashes the shard's image files
        provenance = {shard: phase.provenance(shard) for shard in phase.shards}
        todo, refused = [], {}  # refused: why -> how many existing files were not reused
        for shard in phase.shards:
            path = shard_path(self.work, phase.name, shard)
            got, why = load_shard(path, provenance[shard]) if self.resume else (None, None)
            if got is None:
                todo.append(shard)
                if why is not None:
                    refused[why] = refused.get(why, 0) + 1
            else:
                self._merge(phase, shard, got)
        done = len(phase.shards) - len(todo)
        if self.resume:
            self.say(
                f"  resumed: {done} of {len(phase.shards)} {phase.name} shard(s) already done in {self.work}"
            )
            for why, count in refused.items():  # e.g. after an upgrade: "code" differs, all recomputed
                self.say(f"  recomputed: {count} {phase.name} shard file(s) made with a different {why}")

        def finished(i: int, arrays: dict) -> None:
            shard = todo[i]
            kept = phase.keep(shard, arrays)
            kept = {**kept, **{name: arrays[name] for name in ("bad_index", "bad_reason") if name in arrays}}
            save_shard(shard_path(self.work, phase.name, shard), kept, provenance[shard])
            self._merge(phase, shard, kept)

        self.workers.run(phase.worker, [phase.task(shard) for shard in todo], finished, desc=phase.desc,
                         done=done)  # fmt: skip

    def _merge(self, phase: Phase, shard: Shard, arrays: dict) -> None:
        if "bad_index" in arrays:
            for i, reason in zip(arrays["bad_index"].tolist(), arrays["bad_reason"].tolist()):
                self.bad[int(i)] = str(reason)
        phase.merge(shard, arrays)

    def unreadable(self, dataset) -> list:
        """[(image id, reason)] of every unreadable image so far, each reported; without skip_bad a
        non-empty list ends the run with one line (the finished shards are kept)."""
        bad = [(dataset.id_of(i), self.bad[i]) for i in sorted(self.bad)]
        for name, reason in bad:
            self.say(f"  unreadable image {name}: {reason}")
        if bad and not self.skip_bad:
            raise MinicnnError(
                f"{len(bad)} unreadable image(s), first {bad[0][0]}: {bad[0][1]}; --skip-bad leaves them "
                "out (finished shards are kept: add --resume)"
            )
        return bad
