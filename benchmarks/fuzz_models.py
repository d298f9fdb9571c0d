"""Deeper fuzzing of minicnn's readers: more byte flips, more files, counts of every outcome.

The bounded suite tests/io/test_fuzz.py runs in CI; this script runs the same cases (tests/io/
fuzz_cases.py) at any depth and prints, per group, the cases tried, the clean ones (one error line
naming the file, or a load bit-identical to the original) and every unclean case with its reason.
The other frameworks' readers (torch zip and legacy, safetensors, ONNX) each run in their own
worker process over a tiny VGG written by torch (tests/io/data/tiny_vgg.*), which also reports its
peak resident memory; see fuzz_cases.run_foreign_flips for what counts as clean there.
Flips are loaded in a worker process: a crash or a hang inside libhdf5 is recorded ("in-process")
and the same file is then passed through the command line's guard, whose one-line error makes the
case clean for the command line; such cases are listed too, since ``mc.load`` without
``guard=True`` would crash or hang on them.

    python benchmarks/fuzz_models.py                       # defaults: a few minutes on 2 cores
    python benchmarks/fuzz_models.py --flips 5000 --shipped-flips 2000 --format1-flips 500
    python benchmarks/fuzz_models.py --only foreign --foreign-flips 3000   # the four foreign readers
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "io"))

import fuzz_cases as fc  # noqa: E402

import minicnn as mc  # noqa: E402


def report(name: str, result: dict, seconds: float) -> int:
    """Print one group's counts; returns the number of unclean cases."""
    unclean = result["unclean"]
    exact = result.get("exact", 0)
    print(f"{name}: tried {result['tried']}, clean {result['clean']} (exact original {exact}), ", end="")
    print(f"unclean {len(unclean)}, {seconds:.0f} s")
    guarded = result.get("crash_or_hang_guarded", [])
    if guarded:
        kinds = collections.Counter(status for _, _, status, _ in guarded)
        print(f"  in-process {dict(kinds)}; each made one line by the guard, e.g. {guarded[0][3][:100]}")
    for kind, n in result.get("reasons", collections.Counter()).most_common(8):
        print(f"  {n:6d}  {kind}")
    for case in unclean[:50]:
        print("  UNCLEAN", case)
    return len(unclean)


def report_foreign(run: str, result: dict, seconds: float) -> int:
    """Print one foreign reader's counts; returns the number of unclean cases."""
    unclean = result["unclean"]
    clean = result["error"] + result["exact"] + result["changed"]
    print(
        f"{run} byte flips: tried {result['tried']}, clean {clean} (error line {result['error']}, "
        f"exact original {result['exact']}, changed weights {result['changed']}), unclean {len(unclean)}, "
        f"{seconds:.0f} s, worker peak RSS {result['peak_mb']:.0f} MB"
    )
    for kind, n in result["reasons"].most_common(6):
        print(f"  {n:6d}  {kind}")
    for case in unclean[:50]:
        print("  UNCLEAN", case)
    return len(unclean)


def crafted(workdir: Path) -> dict:
    base = mc.save(fc.small_net(), workdir / "base.h5")
    cases = fc.crafted_cases(base, workdir / "crafted")
    result = {"tried": 0, "clean": 0, "unclean": []}
    for name, path in cases.items():
        status, reason = fc.outcome(path)
        result["tried"] += 1
        if status == "clean":
            result["clean"] += 1
        else:
            result["unclean"].append((name, reason))
    return result


def image_flips(workdir: Path, count: int, seed: int) -> dict:
    import numpy as np
    from PIL import Image

    from minicnn.errors import MinicnnError

    result = {"tried": 0, "clean": 0, "unclean": []}
    rng = np.random.default_rng(seed)
    for fmt in ("PNG", "JPEG", "TIFF", "BMP", "GIF"):
        src_path = workdir / f"small.{fmt.lower()}"
        Image.fromarray(rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)).save(src_path, format=fmt)
        src = src_path.read_bytes()
        for _ in range(count):
            path = workdir / f"flipped.{fmt.lower()}"
            offset, xor = int(rng.integers(len(src))), int(rng.integers(1, 256))
            path.write_bytes(fc.flipped(src, offset, xor))
            result["tried"] += 1
            try:
                a = mc.load_image(path)
                ok = a.dtype == np.uint8 and a.ndim == 3
                reason = "loaded a malformed array"
            except MinicnnError as exc:
                ok = "\n" not in str(exc) and str(path) in str(exc)
                reason = f"message: {str(exc)[:100]!r}"
            except BaseException as exc:  # noqa: BLE001 - counting what escapes
                ok, reason = False, f"{type(exc).__name__} escaped: {str(exc)[:80]!r}"
            if ok:
                result["clean"] += 1
            else:
                result["unclean"].append((fmt, offset, xor, reason))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flips", type=int, default=3000, help="byte flips over a small format-2 file")
    parser.add_argument("--shipped-flips", type=int, default=300, help="byte flips over weights/mnist_vgg.h5")
    parser.add_argument("--format1-flips", type=int, default=100, help="flips over the old format-1 skeleton")
    parser.add_argument("--image-flips", type=int, default=200, help="flips per image format (5 formats)")
    parser.add_argument(
        "--foreign-flips",
        type=int,
        default=3000,
        help="flips per foreign reader (torch zip/legacy, safetensors, ONNX)",
    )
    parser.add_argument(
        "--only", choices=("all", "hdf5", "foreign"), default="all", help="which groups to run"
    )
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before a load counts as a hang")
    args = parser.parse_args(argv)
    from minicnn.paths import DEFAULT_MODEL

    warnings.simplefilter("ignore")  # format-1 notes, Pillow's truncated-file warnings: counted below

    unclean = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small = mc.save(fc.small_net(), work / "small.h5")
        skeleton = fc.format1_skeleton(work / "skeleton.h5")

        def flips(path, count, limit=None):
            return lambda: fc.run_flips(path, count, args.seed, work, args.timeout, limit)

        groups = [
            ("crafted files (every class of the issue)", lambda: crafted(work)),
            (f"byte flips over a small format-2 file ({args.flips})", flips(small, args.flips)),
            (
                f"byte flips over the shipped format-2 {DEFAULT_MODEL.name} ({args.shipped_flips})",
                flips(DEFAULT_MODEL, args.shipped_flips),
            ),
            (
                # format 1 has no checksums: a flip in its weight bytes is undetectable by design, so
                # only its 8 KB of metadata are flipped (where libhdf5 hangs and crashes)
                f"byte flips over the metadata of the old format-1 skeleton ({args.format1_flips})",
                flips(skeleton, args.format1_flips, limit=8192),
            ),
            (
                f"image byte flips ({args.image_flips} x 5 formats)",
                lambda: image_flips(work, args.image_flips, args.seed),
            ),
        ]
        total = {"tried": 0, "clean": 0}
        if args.only == "foreign":
            groups = []
        for name, run in groups:
            start = time.perf_counter()
            result = run()
            unclean += report(name, result, time.perf_counter() - start)
            total["tried"] += result["tried"]
            total["clean"] += result["clean"]
        for run in fc.FOREIGN_RUNS if args.only != "hdf5" else ():
            start = time.perf_counter()
            result = fc.run_foreign_flips(run, args.foreign_flips, args.seed, work, args.timeout)
            unclean += report_foreign(run, result, time.perf_counter() - start)
            total["tried"] += result["tried"]
            total["clean"] += result["tried"] - len(result["unclean"])
    print(f"total: tried {total['tried']}, clean {total['clean']}, unclean {unclean}")
    return 1 if unclean else 0


if __name__ == "__main__":
    sys.exit(main())
