"""ROAR: RemOve And Retrain (Hooker et al. 2019, sec. 3), on the job layer.

For each attribution method and each fraction k, the k most relevant pixels of every digit are
replaced by the per-channel mean (``roar_data.remove_top``), a fresh network is trained on the
modified training digits with minicnn's trainer (the recipe's architecture, seed and schedule,
the same for every cell) and its accuracy is measured on the modified held-out digits. A method
whose ranking finds the evidence makes the accuracy fall faster than the random ranking does; the
retraining is what tells "the evidence is gone" from "the model has never seen such images".

Two phases, each on the one driver (``driver.py``), so each is sharded, saved atomically and
resumable:

1. ``roar-maps``: shards of digits; each computes every method's ranking map with the trained
   model (|map| summed over channels, for the true label), (n, methods, H, W) float32. The client
   gathers them and writes one maps file (atomically) that the cells read, named in their tasks
   with the hash of its contents.
2. ``roar-cells``: one shard per cell (no removal; each method and the random ranking at each k);
   a cell retrains and returns the held-out accuracy. A rerun with ``resume`` skips every cell
   whose file holds the same provenance (model, data, methods' maps, recipe, schedule, seed, code).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.jobs.driver import Driver, Phase
from minicnn.jobs.shards import check_code, code_version, plan, provenance

RANDOM = "random"  # the baseline ranking's name in the table
NONE = "none"  # the cell without removal (k = 0)


@dataclass(frozen=True)
class RoarJob:
    """weights: the trained model file that ranks the pixels (path, sha256); methods: registry
    names; fractions: the k values in (0, 1]; recipe: the architecture retrained
    (``train.models.MODELS``); epochs, max_steps: its schedule (None: the recipe's epochs / no
    limit); per_class: digits per class used; seed: the training seed (the same for every cell)
    and the random ranking's; batch_size: images per pass of the maps phase."""

    weights: str
    model_sha256: str
    methods: tuple
    fractions: tuple
    recipe: str = "mnist-vgg"
    epochs: int | None = None
    max_steps: int | None = None
    per_class: int = 500
    seed: int = 0
    batch_size: int = 64
    code: str = field(default_factory=code_version)

    def settings(self) -> dict:
        return {"methods": list(self.methods), "recipe": self.recipe, "epochs": self.epochs,
                "max_steps": self.max_steps, "per_class": self.per_class, "seed": self.seed}  # fmt: skip

    def cells(self) -> list[tuple[str, float]]:
        """(method, k) of every cell: (NONE, 0) first, then each method and RANDOM at each k."""
        return [(NONE, 0.0)] + [(m, float(k)) for m in (*self.methods, RANDOM) for k in self.fractions]


def data_digest(per_class: int) -> str:
    """sha256 of the digits and labels a job reads (so a changed data file is recomputed)."""
    from minicnn.jobs.roar_data import load_digits

    digits = load_digits(per_class)
    return hashlib.sha256(digits.x.tobytes() + digits.labels.tobytes()).hexdigest()


def roar_maps_shard(task) -> dict:
    """Worker: (job, shard) -> index (n,) int64, maps (n, methods, H, W) float32: each method's
    |map| summed over channels for the shard's digits and their true labels."""
    from minicnn.backend import to_numpy
    from minicnn.io.loader import load
    from minicnn.jobs.roar_data import load_digits
    from minicnn.tools.methods import get

    job, shard = task
    check_code(job.code)
    net = load(job.weights)
    digits = load_digits(job.per_class)
    index = np.arange(shard.start, shard.stop)
    n, _, h, w = digits.x[index].shape
    maps = np.zeros((n, len(job.methods), h, w), dtype=np.float32)
    for first in range(0, n, job.batch_size):
        part = index[first : first + job.batch_size]
        x = net.xp.asarray(digits.x[part], dtype=net.dtype)
        for a, name in enumerate(job.methods):
            m = to_numpy(get(name)(net, x, digits.labels[part])).astype(np.float64)
            m = m.sum(axis=1) if m.ndim == 4 else m
            maps[first : first + len(part), a] = np.abs(m)
    return {"index": index, "maps": maps}


def roar_cell(task) -> dict:
    """Worker: (job, (method, k), maps file, its sha256) -> accuracy () float64 on the modified
    held-out digits, steps () int64, seconds () float64 of training."""
    from minicnn.jobs.roar_data import channel_mean, load_digits, random_ranking, remove_top
    from minicnn.train.loop import TrainConfig, accuracy, train
    from minicnn.train.models import MODELS, build

    job, (method, fraction), maps_file, maps_sha = task
    check_code(job.code)
    digits = load_digits(job.per_class)
    n, _, h, w = digits.x.shape
    if method == NONE:
        x = digits.x
    else:
        if method == RANDOM:
            ranking = random_ranking(n, h, w, job.seed)
        else:
            maps = _read_maps(maps_file, maps_sha)
            ranking = maps[:, list(job.methods).index(method)]
        x = remove_top(digits.x, ranking, fraction, channel_mean(digits))
    net = build(job.recipe, job.seed)
    base = MODELS[job.recipe][1]
    config = TrainConfig(**{**base.__dict__, "seed": job.seed, "max_steps": job.max_steps})
    if job.epochs is not None:
        config.epochs = int(job.epochs)
    train_part = ~digits.heldout
    start = time.perf_counter()
    history = train(net, x[train_part], digits.labels[train_part], config, progress=False)
    seconds = time.perf_counter() - start
    acc = accuracy(net, x[digits.heldout], digits.labels[digits.heldout])
    return {"accuracy": np.float64(acc), "steps": np.int64(history.steps), "seconds": np.float64(seconds)}


def _read_maps(path, sha: str) -> np.ndarray:
    with np.load(path) as f:
        maps = f["maps"]
    if hashlib.sha256(maps.tobytes()).hexdigest() != sha:
        raise MinicnnError(f"the ROAR maps file {path} changed since this run wrote it; run again")
    return maps


class MapsPhase(Phase):
    name, desc = "roar-maps", "maps"
    worker = staticmethod(roar_maps_shard)

    def __init__(self, job: RoarJob, n: int, shard_size: int, data_sha: str):
        self.job, self.data_sha = job, data_sha
        self.shards = plan(n, shard_size)
        self.parts: list = []

    def task(self, shard):
        return (self.job, shard)

    def provenance(self, shard):
        return provenance(self.name, self.job.model_sha256, shard, None, data=self.data_sha,
                          methods=list(self.job.methods), per_class=self.job.per_class)  # fmt: skip

    def merge(self, shard, arrays):
        self.parts.append((int(shard.start), arrays["maps"]))

    def gathered(self) -> np.ndarray:
        return np.concatenate([maps for _, maps in sorted(self.parts, key=lambda p: p[0])])


class CellsPhase(Phase):
    name, desc = "roar-cells", "retrained models"
    worker = staticmethod(roar_cell)

    def __init__(self, job: RoarJob, maps_file: Path, maps_sha: str, data_sha: str):
        self.job, self.maps_file, self.maps_sha, self.data_sha = job, maps_file, maps_sha, data_sha
        self.cells = job.cells()
        self.shards = plan(len(self.cells), 1)
        self.results: dict = {}

    def task(self, shard):
        return (self.job, self.cells[shard.start], str(self.maps_file), self.maps_sha)

    def provenance(self, shard):
        method, fraction = self.cells[shard.start]
        # the random and unmodified cells do not read the maps: other methods' maps leave them valid
        maps = self.maps_sha if method not in (RANDOM, NONE) else None
        return provenance(self.name, self.job.model_sha256, shard, None, data=self.data_sha, maps=maps,
                          cell=[method, fraction], **self.job.settings())  # fmt: skip

    def merge(self, shard, arrays):
        self.results[self.cells[shard.start]] = {
            k: float(arrays[k]) for k in ("accuracy", "steps", "seconds")
        }


@dataclass
class RoarResult:
    """accuracy[method][k]: held-out accuracy of the model retrained with the top k of ``method``'s
    ranking removed (RANDOM: the random ranking); baseline: no removal; seconds[(method, k)]: each
    cell's training time; steps: training steps per cell."""

    fractions: list
    accuracy: dict
    baseline: float
    seconds: dict
    steps: int


def run_roar(
    job: RoarJob, workers, work, shard_size: int = 500, resume: bool = False, say=print
) -> RoarResult:
    """Run both phases on open ``workers`` (``runners.Workers``) with shard files under ``work``."""
    from minicnn.io.atomic import atomic_path
    from minicnn.jobs.roar_data import load_digits

    digits = load_digits(job.per_class)
    data_sha = data_digest(job.per_class)
    driver = Driver(workers, work, resume=resume, say=say)
    maps_phase = MapsPhase(job, len(digits.labels), shard_size, data_sha)
    driver.run(maps_phase)
    maps = maps_phase.gathered()
    maps_sha = hashlib.sha256(maps.tobytes()).hexdigest()
    maps_file = Path(work) / "roar-maps.npz"
    with atomic_path(maps_file, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, maps=maps)
    cells = CellsPhase(job, maps_file, maps_sha, data_sha)
    driver.run(cells)
    accuracy = {
        m: {k: cells.results[(m, k)]["accuracy"] for k in job.fractions} for m in (*job.methods, RANDOM)
    }
    seconds = {f"{m} {k}": r["seconds"] for (m, k), r in cells.results.items()}
    steps = int(cells.results[(NONE, 0.0)]["steps"])
    return RoarResult(list(job.fractions), accuracy, cells.results[(NONE, 0.0)]["accuracy"], seconds, steps)
