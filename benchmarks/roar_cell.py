"""One ROAR cell timed, and the full run extrapolated from it (Hooker et al. 2019; minicnn/jobs/roar.py).

    python benchmarks/roar_cell.py [--steps 30] [--digits 500]

Times the two kinds of work of ``minicnn roar`` on the shipped 5,000 digits with the mnist-vgg recipe:
the ranking maps of the three default methods on ``--digits`` digits, and one retraining (the random
ranking at k = 0.5) stopped after ``--steps`` steps. Then prints the full default run (17 retrainings
of 8 epochs x 70 steps, maps of 5,000 digits) extrapolated linearly from those figures, with the
machine's load average: the figure is an extrapolation, and only as good as the machine was quiet.
Not a test.
"""

from __future__ import annotations

import argparse
import os
import time

from minicnn.jobs.roar import RANDOM, RoarJob, roar_cell, roar_maps_shard
from minicnn.jobs.roar_data import load_digits
from minicnn.jobs.shards import Shard, file_hash
from minicnn.paths import DEFAULT_MODEL
from minicnn.train.models import MODELS

METHODS = ("gradient", "gradient_x_input", "guided")
FRACTIONS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--digits", type=int, default=500)
    args = parser.parse_args()
    digits = load_digits(500)
    job = RoarJob(str(DEFAULT_MODEL), file_hash(DEFAULT_MODEL), METHODS, (0.5,), max_steps=args.steps)
    start = time.perf_counter()
    roar_maps_shard((job, Shard(0, args.digits)))
    maps = time.perf_counter() - start
    cell = roar_cell((job, (RANDOM, 0.5), "", ""))
    per_step = float(cell["seconds"]) / int(cell["steps"])
    config = MODELS["mnist-vgg"][1]
    steps = config.epochs * (int((~digits.heldout).sum()) // config.batch_size)
    cells = 1 + (len(METHODS) + 1) * FRACTIONS
    total = cells * steps * per_step + maps * len(digits.labels) / args.digits
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs")
    print(f"maps: {maps:.2f} s for {args.digits} digits x {len(METHODS)} methods")
    print(
        f"retraining: {int(cell['steps'])} steps in {float(cell['seconds']):.2f} s, {per_step:.3f} s per step"
    )
    print(f"full run (extrapolated): {cells} cells x {steps} steps + maps of {len(digits.labels)} digits = "
          f"{total / 60:.1f} min")  # fmt: skip


if __name__ == "__main__":
    main()
