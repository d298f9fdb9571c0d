"""Two checkouts of minicnn side by side: VGG16 224x224 forward and saliency, each in its own process.

Used to show that a change keeps (or improves) speed: the same workload runs in a fresh process per
revision, alternating old, new, old, new, ... so that machine load drifts over both alike. Each
child process warms up (Numba cache, first call) and reports the median of its timed calls.

    git worktree add /tmp/before <old commit>
    python benchmarks/compare_revisions.py /tmp/before . --batches 1 8 --rounds 3 --repeats 3

``--api`` times what a user calls (``mc.saliency``; the scores-only pass ``keep="output"`` where
the revision has it) instead of ``net.forward`` / ``net.backward``, which keep every output.
``--tuned`` calls ``mc.tune_process()`` first in a revision that has it: since that function, the
process settings are no longer applied by ``import minicnn``, so a plain API call of a newer
revision runs without them, and ``--tuned`` compares what the ``minicnn`` command runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import minicnn as mc
batch, repeats, tuned, api = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "tuned", sys.argv[5] == "api"
if tuned and hasattr(mc, "tune_process"):  # revisions before it applied the settings on import
    mc.tune_process()
net = mc.vgg16(seed=0)
x = (np.random.default_rng(0).standard_normal((batch, 3, 224, 224)) * 50).astype(np.float32)
from minicnn import record
def forward():
    if api and "output" in getattr(record, "KEEP", ()):  # the scores-only pass, where the revision has it
        return net.run(x, keep="output").output()
    return net.forward(x)
def saliency():
    if api:
        return mc.saliency(net, x, np.arange(batch) % 1000, progress=False)
    y = net.forward(x)
    dy = np.zeros_like(y)
    dy[np.arange(batch), np.arange(batch) % 1000] = 1
    return net.backward(dy)
out = {}
for name, fn in (("forward", forward), ("saliency", saliency)):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    out[name] = times
print(json.dumps({"file": mc.__file__, **out}))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="checkout of the old revision (repository root)")
    parser.add_argument("new", type=Path, help="checkout of the new revision")
    parser.add_argument("--batches", type=int, nargs="+", default=[1])
    parser.add_argument("--rounds", type=int, default=3, help="processes per revision and batch")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per process")
    parser.add_argument(
        "--tuned", action="store_true",
        help="call mc.tune_process() first where the revision has it (as the minicnn command does)",
    )  # fmt: skip
    parser.add_argument(
        "--api", action="store_true",
        help="time what a user calls: mc.saliency, and net.run(x, keep='output') for the scores where "
        "the revision has that level (else net.forward); without it, net.forward and net.backward",
    )  # fmt: skip
    args = parser.parse_args(argv)
    for batch in args.batches:
        times = {"old": {"forward": [], "saliency": []}, "new": {"forward": [], "saliency": []}}
        for _ in range(args.rounds):
            for label in ("old", "new"):
                root = str(getattr(args, label).resolve())
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, root, str(batch), str(args.repeats),
                     "tuned" if args.tuned else "plain", "api" if args.api else "engine"],
                    capture_output=True, text=True, check=True, cwd=root,
                )  # fmt: skip
                result = json.loads(done.stdout.strip().splitlines()[-1])
                assert result["file"].startswith(root), result["file"]  # the checkout we meant
                for name in ("forward", "saliency"):
                    times[label][name] += result[name]
        for name in ("forward", "saliency"):
            old, new = (sorted(times[k][name]) for k in ("old", "new"))
            mo, mn = statistics.median(old), statistics.median(new)
            print(
                f"batch {batch} {name:<9} old {1e3 * mo:7.0f} ms [{1e3 * old[0]:.0f}-{1e3 * old[-1]:.0f}]"
                f"  new {1e3 * mn:7.0f} ms [{1e3 * new[0]:.0f}-{1e3 * new[-1]:.0f}]  new/old {mn / mo:.3f}"
                f"  ({len(old)} calls each)"
            )


if __name__ == "__main__":
    main()
