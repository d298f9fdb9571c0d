"""The options of the dataset-wide commands (``minicnn/jobs``): who runs the shards, how big they
are, where their files go, resuming, and what to do with unreadable images."""

from __future__ import annotations

from pathlib import Path

from minicnn.errors import MinicnnError


def add_job_options(parser, shard_size: int = 256) -> None:
    """--jobs, --scheduler, --scheduler-timeout, --threads, --shard-size, --batch-size, --work,
    --resume, --skip-bad."""
    from minicnn.cli.options import positive_float, positive_int

    group = parser.add_argument_group("dataset jobs (run on one core, local processes or a Dask cluster)")
    group.add_argument(
        "--jobs", type=positive_int, default=1, metavar="N",
        help="local worker processes (default 1: this process)",
    )  # fmt: skip
    group.add_argument(
        "--scheduler", default=None, metavar="tcp://HOST:PORT",
        help='run the shards on an existing Dask cluster (pip install "minicnn-vis[dask]"); workers read the '
        "images and the model file from the same paths, so they must all see them",
    )  # fmt: skip
    group.add_argument(
        "--scheduler-timeout", type=positive_float, default=30.0, metavar="S",
        help="with --scheduler: seconds for each step of joining the cluster (connect, handshake, a "
        "worker present, a first small task), each failing with one line (default 30)",
    )  # fmt: skip
    group.add_argument(
        "--threads", type=positive_int, default=1, metavar="T",
        help="BLAS/Numba threads per local worker process with --jobs (default 1)",
    )  # fmt: skip
    group.add_argument(
        "--shard-size", type=positive_int, default=shard_size, metavar="N",
        help=f"images per shard: one task, one file of results (default {shard_size})",
    )  # fmt: skip
    group.add_argument(
        "--batch-size", type=positive_int, default=32, metavar="B",
        help="images per forward pass (default 32)",
    )  # fmt: skip
    group.add_argument(
        "--work", type=Path, default=None, metavar="DIR",
        help="folder of the shard files (default: OUT/shards/<job>)",
    )  # fmt: skip
    group.add_argument(
        "--resume", action="store_true",
        help="reuse the shard files of an earlier run made by the same model, settings and images",
    )  # fmt: skip
    group.add_argument(
        "--skip-bad", action="store_true",
        help="leave unreadable images out (each is reported); without it they end the run with an error",
    )  # fmt: skip


def runner_of(args):
    """The jobs.runners.Runner the options ask for (checked: one line for a bad value)."""
    from minicnn.jobs.runners import Runner

    for name in ("jobs", "threads", "shard_size", "batch_size"):
        if getattr(args, name) < 1:
            raise MinicnnError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0 < args.scheduler_timeout < float("inf"):
        raise MinicnnError(
            f"--scheduler-timeout must be a positive number of seconds, got {args.scheduler_timeout}"
        )
    return Runner(
        jobs=args.jobs,
        scheduler=args.scheduler,
        timeout=args.scheduler_timeout,
        threads=args.threads,
        progress=not getattr(args, "no_progress", False),
    )


def dataset_and_targets(args, net):
    """The dataset a per-image job reads (``--image``, or ``--count`` shipped held-out digits) and its
    fixed targets: None for ``--target predicted``, else one validated class index per image (N,)."""
    import numpy as np

    from minicnn import paths
    from minicnn.jobs.dataset import open_dataset

    source = args.image if args.image is not None else paths.HELDOUT
    data = open_dataset(source, net.input_shape, net.meta.get("preprocess") or "none", net.dtype,
                        count=None if args.image is not None else args.count)  # fmt: skip
    if args.target == "predicted":
        return data, None
    classes = int(net.shapes(data.shape)[-1][0])
    try:
        target = int(args.target)
    except ValueError:
        raise MinicnnError(f"--target {args.target!r}: expected a class index or 'predicted'") from None
    if not 0 <= target < classes:
        raise MinicnnError(f"--target {target}: the network has {classes} classes (0..{classes - 1})")
    return data, np.full(len(data), target, dtype=np.int64)
