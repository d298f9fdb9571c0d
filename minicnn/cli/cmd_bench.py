"""``minicnn bench``: min, median and max time of a forward pass and of a saliency map (forward +
backward)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from minicnn.backend import synchronize
from minicnn.cli.loading import load_network, move_network
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "benchmark: min / median / max times of forward and saliency (forward + backward) on this machine"
EPILOG = """\
Times the engine on the chosen network with random inputs of its input size, after one warm-up
call (Numba compilation, GPU start-up), and prints the min, median and max of the timed repeats (the
spread says how far one median can be trusted on a busy machine). --weights also accepts vgg16 or
vgg19: a randomly initialised ImageNet VGG (Simonyan & Zisserman 2014) at --size. The full
benchmarks against PyTorch are the scripts in benchmarks/ of a source checkout (they need the
test dependencies and are not installed with the package): --list names them, --script NAME runs
one with its default settings.

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


def time_calls(fn, repeats: int, sync, desc: str = "bench", progress: bool = False) -> list[float]:
    """Sorted wall times in seconds of ``repeats`` calls of ``fn()``, after one warm-up call (a
    progress bar of the calls on stderr with ``progress``; it is drawn outside the timed region)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=repeats + 1, desc=desc, unit="call", leave=False, disable=not progress)
    fn()
    sync()
    bar.update()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
        bar.update()
    bar.close()
    return sorted(times)


def spread(times: list[float]) -> tuple[float, float, float]:
    """(min, median, max) of sorted times; the median of an even count is the mean of the middle two."""
    n = len(times)
    median = times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2
    return times[0], median, times[-1]


def run(args) -> Report:
    import numpy as np

    import minicnn as mc

    report = Report("bench")
    scripts = sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem != "harness")
    if args.list:
        print(
            "\n".join(scripts)
            if scripts
            else f"no benchmark scripts in {BENCHMARKS}: they live in benchmarks/ of a source checkout "
            "(git clone the repository); an installed package has none"
        )
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

    name = args.weights if args.weights in ("vgg16", "vgg19") else Path(args.weights).name
    report.model = str(args.weights)
    report.settings.update(batch=args.batch, repeats=args.repeats, shape=list(shape), device=net.device)
    report.say(f"minicnn bench: {name} on {net.device}, batch {args.batch} x {shape}, {net.dtype}")
    report.say(f"  {args.repeats} timed repeats after one warm-up call; ms per batch (min / median / max)")
    for label, fn in (
        ("forward", lambda: net.forward(x)),
        ("saliency", lambda: mc.saliency(net, x, "predicted")),
    ):
        low, mid, high = spread(
            time_calls(fn, args.repeats, sync, label, not getattr(args, "no_progress", False))
        )
        report.say(
            f"  {label:<9} {low * 1e3:9.1f} / {mid * 1e3:9.1f} / {high * 1e3:9.1f} ms"
            f"  ({args.batch / mid:8.1f} images/s at the median)"
        )
        report.numbers.update(
            {f"{label} seconds": mid, f"{label} seconds min": low, f"{label} seconds max": high}
        )
    return report
