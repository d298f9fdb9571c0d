"""How the dataset-wide jobs scale (issue 18): top-9 over the 500 held-out digits in this process,
on 1 and 2 local worker processes and on a 2-worker Dask cluster on 127.0.0.1; the cost of one
shard; and, on paper, top-9 over ImageNet val (50,000 images) with VGG16 on N machines from the
per-image time measured here.

    python benchmarks/jobs_scaling.py [--shard-size 50] [--vgg-images 4] [--no-dask]

In-process runs with this process's default threads (2 BLAS + 2 Numba here) and once limited to
one thread of each (as every local worker is). Each runner runs the whole job with one set of workers: the
digits twice (the first run pays for starting the workers: spawn, import, model load, Numba's cached
kernels; the second is the steady state), then the VGG16 workload once. The arrays of every run are
compared with the in-process run's (they must be identical). The machine is shared: quote these
figures with the load average printed at the top.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import minicnn as mc
from minicnn.jobs.dataset import open_dataset
from minicnn.jobs.runners import Runner, Workers
from minicnn.jobs.shards import file_hash
from minicnn.jobs.topk import TopkJob, run_topk
from minicnn.jobs.worker import remember
from minicnn.paths import DEFAULT_MODEL, HELDOUT

LAYER = "block2_conv2_relu"


def digit_job(net, images: int):
    data = open_dataset(HELDOUT, net.input_shape, "unit", count=images)
    channels = tuple(range(net.shapes()[net.index(LAYER)][0]))  # all 32 maps: 288 projections
    weights = str(DEFAULT_MODEL.absolute())
    job = TopkJob(weights, file_hash(weights), "cpu", data, LAYER, 9, "deconvnet", channels, 25)
    remember(net, weights, job.model_sha256)
    return job


def vgg_job(tmp, images: int):
    """VGG16's convolutions up to block3_conv3 (random weights, seed 0) on 64x64 inputs, saved to a
    file the workers load; ``images`` random inputs as an .npz of network input; 4 maps."""
    full = mc.vgg16(seed=0)
    layer = "block3_conv3_relu"
    net = mc.Sequential(
        full.layers[: full.index(layer) + 1], meta={"input_shape": [3, 64, 64], "preprocess": "none"}
    )
    weights = str(Path(tmp, "vgg16_block3.h5"))
    mc.save(net, weights)
    x = (np.random.default_rng(0).random((images, 3, 64, 64)) * 255 - 120).astype(np.float32)
    np.savez(Path(tmp, "inputs.npz"), images=x)
    data = open_dataset(Path(tmp, "inputs.npz"), (3, 64, 64), "none")
    job = TopkJob(weights, file_hash(weights), "cpu", data, layer, 9, "deconvnet", (0, 1, 2, 3), 8)
    return job, net


def timed_runs(jobs, runner, shard_sizes, tmp, one_thread=False):
    """For each (job, net): seconds of a whole run and its result; all with one set of workers (one pool).
    one_thread: this process limited to one BLAS and one Numba thread meanwhile (threadpoolctl)."""
    import contextlib

    out = []
    limit = contextlib.nullcontext()
    if one_thread:
        import numba
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(1)
        numba.set_num_threads(1)
    with limit, Workers(runner) as workers:
        for r, ((job, net), size) in enumerate(zip(jobs, shard_sizes)):
            remember(net, job.weights, job.model_sha256)
            start = time.perf_counter()
            result, _ = run_topk(job, net, Path(tmp, f"{id(runner)}-{r}"), workers, size, say=lambda s: None)
            out.append((time.perf_counter() - start, result))
    if one_thread:
        import numba

        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return out


def same(a, b) -> bool:
    return all(
        np.array_equal(getattr(a, f), getattr(b, f)) for f in ("values", "index", "patches", "projections")
    )


def shard_overhead(job, net, runner, tmp, n):
    """Seconds per shard: the scan of n images in shards of 10 and of n, warm, difference / extra shards."""
    remember(net, job.weights, job.model_sha256)
    with Workers(runner) as workers:
        run_topk(job, net, Path(tmp, "warm"), workers, 50, say=lambda s: None)  # start the workers
        t = {}
        for size in (10, n):
            start = time.perf_counter()
            run_topk(job, net, Path(tmp, f"o{size}"), workers, size, say=lambda s: None)
            t[size] = time.perf_counter() - start
    return (t[10] - t[n]) / (n // 10 - 1)


def vgg16_per_image(images: int):
    """(forward seconds per image to block5_conv3_relu, projection seconds per unit), VGG16 224x224,
    in this process with one BLAS and one Numba thread (what one worker process does)."""
    import numba
    from threadpoolctl import threadpool_limits

    from minicnn.tools.topk import project_slots

    net = mc.vgg16(seed=0)
    x = (np.random.default_rng(0).standard_normal((images, 3, 224, 224)) * 50).astype(np.float32)
    numba.set_num_threads(1)
    with threadpool_limits(1):
        net.run(x[:1], stop="block5_conv3_relu")  # warm-up
        start = time.perf_counter()
        a = net.run(x, stop="block5_conv3_relu").output()
        forward = (time.perf_counter() - start) / images
        pos = np.zeros((images, 2), np.int64)
        boxes = np.tile(np.array([[0, 0, 224, 224]]), (images, 1))
        start = time.perf_counter()
        project_slots(net, x, "block5_conv3_relu", np.arange(images) % a.shape[1], pos, boxes, "deconvnet")
        project = (time.perf_counter() - start) / images
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return forward, project


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--shard-size", type=int, default=50)
    parser.add_argument("--vgg-images", type=int, default=4, help="images for the VGG16 224x224 timing")
    parser.add_argument("--vgg-scan", type=int, default=48, help="64x64 inputs of workload (b)")
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()}, {os.cpu_count()} cores (machine shared with other agents)")
    net = mc.load(DEFAULT_MODEL)
    job = digit_job(net, args.images)
    runners = {
        "in-process": Runner(progress=False),
        "in-process, 1 thread": Runner(progress=False),
        "1 local process": Runner(jobs=1, processes=True, progress=False),
        "2 local processes": Runner(jobs=2, progress=False),
    }
    cluster = None
    if not args.no_dask:
        from distributed import LocalCluster

        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        )
        runners["Dask, 2 workers"] = Runner(scheduler=cluster.scheduler_address, progress=False)
    rows, reference = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        vgg = vgg_job(tmp, args.vgg_scan)
        jobs = [(job, net), (job, net), vgg]
        sizes = [args.shard_size, args.shard_size, 8]
        for name, runner in runners.items():
            runs = timed_runs(jobs, runner, sizes, tmp, one_thread=name.endswith("1 thread"))
            for w, (_, result) in enumerate(runs):
                reference.setdefault(w, result)
            rows.append(
                (name, [t for t, _ in runs], all(same(r, reference[w]) for w, (_, r) in enumerate(runs)))
            )
        base = rows[0][1]
        print(f"\n(a) top-9 of all 32 maps of {LAYER} over {args.images} digits (mnist_vgg), shards of "
              f"{args.shard_size}; (b) top-9 of 4 maps of VGG16 block3_conv3 (random weights) over "
              f"{args.vgg_scan} random 64x64 inputs, shards of 8")  # fmt: skip
        print(
            "| runner | (a) first run s | (a) steady s | (a) images/s | (b) s | (b) images/s "
            "| (b) vs in-process | identical arrays |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for name, t, ok in rows:
            print(f"| {name} | {t[0]:.2f} | {t[1]:.2f} | {args.images / t[1]:.0f} | {t[2]:.1f} | "
                  f"{args.vgg_scan / t[2]:.2f} | {base[2] / t[2]:.2f}x | {ok} |")  # fmt: skip
        print("\nper-shard overhead (scan in shards of 10 vs one shard, steady state):")
        for name in ("in-process", "2 local processes", "Dask, 2 workers"):
            if name in runners:
                cost = shard_overhead(job, net, runners[name], tmp, args.images)
                print(f"  {name}: {cost * 1000:.1f} ms per shard")
    if cluster is not None:
        cluster.close()
    forward, project = vgg16_per_image(args.vgg_images)
    print(f"\nVGG16 224x224 here (one process, one thread): forward to block5_conv3_relu {forward:.3f} "
          f"s/image, one projection {project:.3f} s/unit")  # fmt: skip
    scan, proj = 50_000 * forward, 512 * 9 * project
    print("top-9 of all 512 maps of block5_conv3 over ImageNet val (50,000 images), on paper, each")
    print("machine with 2 cores running 2 one-thread workers at the speed measured here (shards of 256:")
    print("196 scan shards, their overhead of a few ms each is negligible):")
    print("| machines | workers | scan h | projections h | total h |")
    print("|---|---|---|---|---|")
    for n in (1, 2, 4, 8, 16, 32):
        w = 2 * n
        print(
            f"| {n} | {w} | {scan / w / 3600:.2f} | {proj / w / 3600:.2f} | {(scan + proj) / w / 3600:.2f} |"
        )


if __name__ == "__main__":
    main()
