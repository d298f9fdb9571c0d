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
vgg19: a randomly initialised ImageNet VGG (Simonyan & Zisserman 2014); at a --size other than 224
its convolutional layers are timed with a global-average-pool classifier, as VGG's fully connected
layers need 224 x 224 inputs. The full benchmarks against PyTorch are the scripts in benchmarks/ of
a source checkout (not installed with the package; they need the test dependencies): --list names
them and --script NAME runs one with its default settings, from the checkout's root or with the
package installed from the checkout with pip install -e.

examples:
  minicnn bench                                        # shipped digit model, batch 64
  minicnn bench --weights vgg16 --size 64 --batch 2 --repeats 3
  minicnn bench --weights vgg16 --batch 1 --repeats 2  # the full VGG16 at 224 x 224
  minicnn bench --device gpu
  minicnn bench --list                                 # the scripts in benchmarks/
  minicnn bench --script first_call                    # benchmarks/first_call.py
"""

# a checkout's benchmarks/ folder is recognised by the helpers every script imports
HARNESS = "harness.py"


def benchmark_folder() -> Path | None:
    """benchmarks/ of the source checkout: beside the package (run from a checkout or installed
    with pip install -e), else in the current folder (a checkout's root); None when neither has
    one (an installed package carries no benchmark scripts)."""
    for folder in (Path(__file__).resolve().parents[2] / "benchmarks", Path.cwd() / "benchmarks"):
        if (folder / HARNESS).is_file():
            return folder
    return None


def benchmark_scripts() -> tuple[Path, list[str]]:
    """(the benchmarks/ folder, its script names); a MinicnnError says how to get them when there
    is no checkout."""
    folder = benchmark_folder()
    if folder is None:
        raise MinicnnError(
            "the benchmark scripts are not installed with the package: they are in benchmarks/ of a "
            "source checkout; run minicnn bench --list from the checkout's root (or pip install -e it)"
        )
    return folder, sorted(p.stem for p in folder.glob("*.py") if p.name != HARNESS)


def bench_size(text: str) -> int:
    """--size: an int >= 32 (VGG's five 2 x 2 poolings need at least 32 pixels)."""
    import argparse

    from minicnn.cli.options import positive_int

    size = positive_int(text)
    if size < 32:
        raise argparse.ArgumentTypeError(f"expected a size >= 32 (VGG halves it five times), got {size}")
    return size


def add_arguments(parser) -> None:
    from minicnn import paths
    from minicnn.cli.options import positive_int
    from minicnn.io.formats import model_files

    parser.add_argument(
        "--weights", default=str(paths.DEFAULT_MODEL), metavar="FILE",
        help=f"model file ({model_files()}), or vgg16 / vgg19 (random weights); default: the shipped "
        "digit model",
    )  # fmt: skip
    parser.add_argument("--batch", type=positive_int, default=64, help="images per pass (default 64)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed repeats (default 5)")
    parser.add_argument(
        "--size", type=bench_size, default=224, help="input size for vgg16/vgg19 (default 224, at least 32)"
    )
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


def random_vgg(name: str, size: int, seed: int):
    """VGG ``name`` with seeded random weights for an input of ``size`` x ``size``: the whole
    network at 224; at other sizes its convolutional layers, then global average pooling and one
    Dense layer to 1000 scores (the fully connected layers read exactly 7 x 7 x 512 features)."""
    import minicnn as mc
    from minicnn.zoo import vgg, vgg_layers

    if size == 224:
        return vgg(name, seed=seed)
    layers, meta = vgg_layers(name, include_top=False, input_size=size)
    layers += [mc.GlobalAvgPool2D(name="gap"), mc.Dense(512, 1000, name="predictions")]
    meta["architecture"] = f"{name} convolutional layers + global-average-pool classifier"
    return mc.Sequential(layers, seed=seed, meta=meta)


def run(args) -> Report:
    import numpy as np

    import minicnn as mc

    report = Report("bench")
    if args.list or args.script is not None:
        folder, scripts = benchmark_scripts()
    if args.list:
        print("\n".join(scripts))
        report.tables["scripts"] = [{"name": s} for s in scripts]
        return report
    if args.script is not None:
        if args.script not in scripts:
            raise MinicnnError(f"unknown benchmark {args.script!r}; expected one of: {', '.join(scripts)}")
        report.exit_code = subprocess.call([sys.executable, str(folder / f"{args.script}.py")])
        return report
    if args.weights in ("vgg16", "vgg19"):
        net = move_network(random_vgg(args.weights, args.size, args.seed), args.device)
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
    if net.meta.get("architecture", "").endswith("classifier"):
        report.say(f"  {net.meta['architecture']} (VGG's fully connected layers need 224 x 224)")
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
