"""``minicnn bench``: median time of a forward pass and of a saliency map (forward + backward)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from minicnn.backend import synchronize
from minicnn.cli.loading import load_network, move_network
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "benchmark: median times of forward and saliency (forward + backward) on this machine"
EPILOG = """\
Times the engine on the chosen network with random inputs of its input size, after one warm-up
call (Numba compilation, GPU start-up), and prints the medians. --weights also accepts vgg16 or
vgg19: a randomly initialised ImageNet VGG (Simonyan & Zisserman 2014) at --size. The full
benchmarks against PyTorch are the scripts in benchmarks/ (a source checkout): --list names them,
--script NAME runs one with its default settings.

examples:
  minicnn bench                                   # shipped digit model, batch 64
  minicnn bench --weights vgg16 --size 64 --batch 2 --repeats 3
  minicnn bench --device gpu
  minicnn bench --script vgg16_cpu                # benchmarks/vgg16_cpu.py
"""

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def add_arguments(parser) -> None:
    from minicnn import paths

    parser.add_argument(
        "--weights", default=str(paths.DEFAULT_MODEL), metavar="FILE",
        help="model file, or vgg16 / vgg19 (random weights); default: the shipped digit model",
    )  # fmt: skip
    parser.add_argument("--batch", type=int, default=64, help="images per pass (default 64)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    parser.add_argument("--size", type=int, default=224, help="input size for vgg16/vgg19")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="default: cpu")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--list", action="store_true", help="list the scripts in benchmarks/")
    parser.add_argument("--script", metavar="NAME", help="run benchmarks/NAME.py instead")


def median_time(fn, repeats: int, sync) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def run(args) -> Report:
    import numpy as np

    import minicnn as mc

    report = Report("bench")
    scripts = sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem != "harness")
    if args.list:
        print("\n".join(scripts) if scripts else f"no benchmark scripts in {BENCHMARKS}")
        report.tables["scripts"] = [{"name": s} for s in scripts]
        return report
    if args.script is not None:
        if args.script not in scripts:
            raise MinicnnError(f"unknown benchmark {args.script!r}; expected one of: {', '.join(scripts)}")
        report.exit_code = subprocess.call([sys.executable, str(BENCHMARKS / f"{args.script}.py")])
        return report
    if args.batch < 1 or args.repeats < 1 or args.size < 32:
        raise MinicnnError("expected --batch >= 1, --repeats >= 1 and --size >= 32")
    if args.weights in ("vgg16", "vgg19"):
        build = mc.vgg16 if args.weights == "vgg16" else mc.vgg19
        net = move_network(build(seed=args.seed, input_size=args.size), args.device)
        shape = (3, args.size, args.size)
    else:
        net = load_network(args.weights, args.device)
        if net.input_shape is None:
            raise MinicnnError(f"{args.weights} does not store its input size")
        shape = net.input_shape
    rng = np.random.default_rng(args.seed)
    x = net.xp.asarray(rng.standard_normal((args.batch, *shape)).astype(net.dtype))

    def sync():
        synchronize(net.xp)

    fwd = median_time(lambda: net.forward(x), args.repeats, sync)
    sal = median_time(lambda: mc.saliency(net, x, "predicted"), args.repeats, sync)
    name = args.weights if args.weights in ("vgg16", "vgg19") else Path(args.weights).name
    report.say(f"minicnn bench: {name} on {net.device}, batch {args.batch} x {shape}, {net.dtype}")
    report.say(f"  forward   median {fwd * 1e3:9.1f} ms  ({args.batch / fwd:8.1f} images/s)")
    report.say(f"  saliency  median {sal * 1e3:9.1f} ms  ({args.batch / sal:8.1f} images/s)")
    report.numbers["forward seconds"] = fwd
    report.numbers["saliency seconds"] = sal
    return report
