"""The model parameter randomisation test over a dataset (Adebayo et al. 2018, "Sanity Checks for
Saliency Maps", sec. 3), shard by shard.

Each shard stores, for every readable image, its similarity with the trained network's map at every
randomisation step: ``similarity`` (m, methods, measures, steps + 1) float64, methods in the job's
order, measures in ``sanity_protocols.measures(job.protocol)`` order, step 0 the trained network. The merge
(``merge``) concatenates these rows in dataset order and takes the mean over images, so the answer
is the same for any number of workers, shard size or finishing order.

Why image by image inside a shard: SmoothGrad draws its noise for the whole batch from one seed
(``tools.saliency.smoothgrad_noise``), so a map computed in a batch depends on the batch. Each image
here gets exactly what ``randomization_test(net, x[i:i+1], ..., seed=seed)`` gives it alone, whatever
the shard it falls in. The randomised networks are built once per shard (their weights depend only
on the seed and the layer's position, ``tools.sanity.layer_rng``) and every image runs through them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from minicnn.jobs.dataset import Dataset
from minicnn.jobs.driver import bad_arrays
from minicnn.jobs.perimage import read_shard_images
from minicnn.jobs.shards import Shard, code_version, provenance
from minicnn.tools.sanity_protocols import DEFAULT_PROTOCOL


@dataclass(frozen=True)
class SanityJob:
    """The model file (path, sha256), device and dataset; ``methods``: names of
    ``sanity_methods.METHODS``; ``layers``: the learned layers re-initialised, top first
    (``sanity.check_layers``); ``cascade``: cascading (True) or independent (False); ``seed``: the
    re-initialisation's and SmoothGrad's (``randomization_test``'s meaning); ``protocol``: how maps
    are compared (``sanity_protocols.PROTOCOLS``)."""

    weights: str
    model_sha256: str
    device: str
    dataset: Dataset
    methods: tuple
    layers: tuple
    cascade: bool = True
    seed: int = 0
    protocol: str = DEFAULT_PROTOCOL
    code: str = field(default_factory=code_version)  # the client's, checked by each worker

    def provenance(self, phase: str, shard: Shard) -> dict:
        from minicnn.tools.sanity_protocols import measures

        images = self.dataset.fingerprint(range(shard.start, shard.stop))
        return provenance(phase, self.model_sha256, shard, images, methods=list(self.methods),
                          layers=list(self.layers), metrics=list(measures(self.protocol)),
                          cascade=self.cascade, seed=self.seed, protocol=self.protocol)  # fmt: skip


def sanity_shard(task) -> dict:
    """Worker: (job, shard, targets (n,) int64 or None for the predicted class) -> index (m,),
    similarity (m, methods, measures, steps + 1) float64, target (m,) int64 of the readable images."""
    from minicnn.backend import to_numpy
    from minicnn.tools.sanity import randomized_networks
    from minicnn.tools.sanity_methods import all_attributions
    from minicnn.tools.sanity_protocols import compare, measures

    job, shard, targets = task
    names = measures(job.protocol)
    net, ok, images, bad = read_shard_images(job, shard)
    methods = list(job.methods)
    sim = np.zeros((len(ok), len(methods), len(names), len(job.layers) + 1), dtype=np.float64)
    chosen = np.zeros(len(ok), dtype=np.int64)
    x = net.xp.asarray(images, dtype=net.dtype) if len(ok) else None
    singles = [x[j : j + 1] for j in range(len(ok))]  # one image per pass: see the module docstring
    trained = []  # each image's {method: (1, C, H, W)} attributions on the trained network

    def score(step: int, j: int, maps: dict) -> None:
        for a, m in enumerate(methods):
            got = compare(trained[j][m], maps[m], job.protocol)
            sim[j, a, :, step] = [got[metric][0] for metric in names]

    for j, xj in enumerate(singles):
        rec = net.run(xj)  # the trained pass: its class is explained at every step
        chosen[j] = to_numpy(rec.output()).argmax() if targets is None else targets[ok[j] - shard.start]
        trained.append(all_attributions(net, xj, [int(chosen[j])], methods, job.seed, rec))
        score(0, j, trained[j])
    if len(ok):
        steps = randomized_networks(net, list(job.layers), job.cascade, job.seed)
        for step, (_name, randomized) in enumerate(steps, start=1):
            for j, xj in enumerate(singles):
                score(step, j, all_attributions(randomized, xj, [int(chosen[j])], methods, job.seed))
    return {"index": ok, "similarity": sim, "target": chosen, **bad_arrays(bad)}


def merge(job: SanityJob, arrays: dict):
    """The study's result from ``run_per_image``'s arrays (rows in dataset order): a
    ``tools.sanity.RandomizationResult`` with ``per_image[method][metric]`` (steps + 1, N), the
    ``similarity`` means over images (steps + 1,), ``targets`` (N,); ``maps`` is empty (a dataset's
    maps are not kept)."""
    from minicnn.tools.sanity import RandomizationResult
    from minicnn.tools.sanity_protocols import measures

    names = measures(job.protocol)
    sim = np.asarray(arrays["similarity"], dtype=np.float64)  # (N, methods, measures, steps + 1)
    res = RandomizationResult(list(job.layers), list(job.methods), job.cascade, job.seed,
                              np.asarray(arrays["target"]), maps={}, protocol=job.protocol)  # fmt: skip
    for a, m in enumerate(job.methods):
        res.per_image[m] = {metric: sim[:, a, q].T.copy() for q, metric in enumerate(names)}
        res.similarity[m] = {metric: v.mean(axis=1) for metric, v in res.per_image[m].items()}
    return res
