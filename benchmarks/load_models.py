"""Time ``mc.load`` of the shipped models in two checkouts (before/after a change), and the CLI guard.

Each checkout loads its own weights/mnist_vgg.h5 and weights/mnist_gap.h5 in a fresh process per
round, rounds alternating old, new, old, new, ... so that machine load drifts over both alike; each
process warms up once and reports the minimum (wall and CPU time) and the median of ``--repeats``
timed loads; the minimum over rounds is printed, the figure least disturbed by other work on a
shared machine. The guard (the child
process that validates a non-shipped file before the CLI loads it, minicnn.io.guard) is timed
separately in the new checkout, on a copy of the shipped model (a copy is not skipped by digest) and
on the shipped file itself (skipped: only its SHA-256 is computed).

Old code loads format-1 copies of today's shipped models (written by ``write_format1``: the old
code cannot read format 2), new code loads the same copies (the cost of the checks alone) and the
shipped format-2 files (checks plus the SHA-256 verification).

    git worktree add /tmp/before <old commit>
    python benchmarks/load_models.py /tmp/before . --rounds 5 --repeats 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, sys, time, warnings
sys.path.insert(0, sys.argv[1])
warnings.simplefilter("ignore")
import minicnn as mc
repeats = int(sys.argv[2])
out = {"file": mc.__file__}
for name, path in json.loads(sys.argv[3]).items():
    mc.load(path)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        mc.load(path)
        wall.append(time.perf_counter() - t0); cpu.append(time.process_time() - c0)
    # the minimum: on a machine shared with other work, the run least disturbed by it
    out[name] = {"wall": min(wall), "cpu": min(cpu), "wall_median": sorted(wall)[len(wall) // 2]}
print(json.dumps(out))
"""


def write_format1(net, path: Path) -> None:
    """``net`` written in the format-1 layout (what mc.save wrote before #16: variable-length string
    attributes, contiguous datasets, no checksums), so that old and new code can be timed on files
    with the same content."""
    import h5py

    layers = [{"kind": la.kind, "name": la.name, "config": la.config()} for la in net.layers]
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "minicnn"
        f.attrs["format_version"] = 1
        f.attrs["dtype"] = str(net.dtype)
        f.attrs["layers"] = json.dumps(layers)
        f.attrs["meta"] = json.dumps(net.meta, default=lambda v: v.tolist())
        for layer, key, value in net.parameters():
            f.create_dataset(f"params/{layer.name}/{key}", data=value)


def guard_cost(root: Path, repeats: int) -> dict:
    """Seconds for the CLI's pre-load check: the child on a copy, and the digest on the shipped file."""
    import shutil
    import tempfile

    sys.path.insert(0, str(root))
    from minicnn.cli.loading import is_shipped
    from minicnn.io.guard import check_in_child
    from minicnn.paths import DEFAULT_MODEL

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.h5"
        shutil.copy(DEFAULT_MODEL, copy)
        child, digest = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            check_in_child(copy)
            child.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            assert is_shipped(DEFAULT_MODEL)
            digest.append(time.perf_counter() - t0)
    return {"child_median_s": statistics.median(child), "child_min_s": min(child),
            "shipped_digest_median_s": statistics.median(digest)}  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="checkout of the old revision (repository root)")
    parser.add_argument("new", type=Path, help="checkout of the new revision")
    parser.add_argument("--rounds", type=int, default=5, help="processes per revision")
    parser.add_argument("--repeats", type=int, default=50, help="timed loads per process")
    args = parser.parse_args(argv)
    import tempfile
    import warnings

    sys.path.insert(0, str(args.new.resolve()))
    import minicnn as mc
    from minicnn.paths import DEFAULT_MODEL, GAP_MODEL

    tmp = Path(tempfile.mkdtemp())
    shipped = {"vgg": str(DEFAULT_MODEL), "gap": str(GAP_MODEL)}
    format1 = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, path in shipped.items():
            format1[name] = str(tmp / f"{name}_format1.h5")
            write_format1(mc.load(path), Path(format1[name]))
    # old code on format-1 copies of today's shipped models; new code on the same copies (the
    # checks alone) and on the shipped format-2 files (checks and checksums)
    runs = {
        "old/format1": (args.old, format1),
        "new/format1": (args.new, format1),
        "new/format2": (args.new, shipped),
    }
    times = {label: {name: [] for name in shipped} for label in runs}
    for _ in range(args.rounds):
        for label, (root, files) in runs.items():
            root = str(root.resolve())
            done = subprocess.run(
                [sys.executable, "-c", CHILD, root, str(args.repeats), json.dumps(files)],
                capture_output=True, text=True, check=True, cwd=root,
            )  # fmt: skip
            result = json.loads(done.stdout.strip().splitlines()[-1])
            for name in shipped:
                times[label][name].append(result[name])
    for name in shipped:
        for kind in ("wall", "cpu", "wall_median"):
            old = min(r[kind] for r in times["old/format1"][name])
            line = f"mc.load mnist_{name} {kind:<11}: old/format1 {old * 1e3:.2f} ms"
            for label in ("new/format1", "new/format2"):
                new = min(r[kind] for r in times[label][name])
                line += f", {label} {new * 1e3:.2f} ms ({new / old - 1:+.0%})"
            print(line)
    print("guard:", json.dumps(guard_cost(args.new.resolve(), max(3, args.rounds))))


if __name__ == "__main__":
    main()
