"""Top-9 over the 500 held-out digits (PNG files) as a sharded job: the same arrays bit for bit in
this process, with 2 local worker processes and after resuming an interrupted run, and the merged
top-9 equals a brute-force scan that runs every image alone (Zeiler & Fergus 2013, fig. 2)."""

from __future__ import annotations

import numpy as np
import pytest
from jobs_support import LAYER, TOPK_ARGS, assert_same, run_topk

import minicnn as mc
from minicnn.jobs import runners
from minicnn.paths import DEFAULT_MODEL

CHANNELS = [0, 3, 7, 12]


def brute_force(folder, ids, k=9):
    """(values (M, k), index (M, k)): every image alone through the network, the max of each map
    over positions, images ordered by value (descending) then by position in the sorted ids."""
    net = mc.load(DEFAULT_MODEL)
    best = []
    for name in ids:
        x = mc.preprocess(mc.load_image(folder / name, size=(28, 28), mode="L"), "unit")
        a = net.forward(x, stop=LAYER)[0, CHANNELS]  # (M, h, w)
        best.append(a.reshape(len(CHANNELS), -1).max(axis=1))
    best = np.asarray(best, dtype=np.float64).T  # (M, N)
    order = np.stack([np.lexsort((np.arange(best.shape[1]), -row))[:k] for row in best])
    return np.take_along_axis(best, order, axis=1), order


def test_merge_equals_brute_force(reference, digit_folder):
    arrays = reference
    folder, ids = digit_folder
    values, index = brute_force(folder, ids)
    assert np.array_equal(arrays["index"], index)
    np.testing.assert_allclose(arrays["values"], values, rtol=1e-5)
    assert (arrays["ids"] == np.asarray(ids)[index]).all()  # stable ids: relative paths
    assert len({tuple(row) for row in index}) == len(CHANNELS)  # the maps pick different images


def test_projection_is_reconstruct_of_the_unit(reference, digit_folder):
    """One slot, checked against mc.reconstruct of that unit on that image, cropped to its box."""
    arrays = reference
    folder, ids = digit_folder
    net = mc.load(DEFAULT_MODEL)
    row, rank = 1, 4
    x = mc.preprocess(
        mc.load_image(folder / ids[arrays["index"][row, rank]], size=(28, 28), mode="L"), "unit"
    )
    y, xpos = (int(v) for v in arrays["positions"][row, rank])
    full = mc.reconstruct(net, x, LAYER, unit=(CHANNELS[row], y, xpos), mode="deconvnet")[0]
    x0, y0, x1, y1 = (int(v) for v in arrays["boxes"][row, rank])
    pad = np.pad(full, ((0, 0), (8, 8), (8, 8)))[:, y0 + 8 : y1 + 8, x0 + 8 : x1 + 8]
    np.testing.assert_allclose(arrays["projections"][row, rank], pad, atol=1e-6)
    assert np.abs(pad).sum() > 0


def test_two_local_processes_give_the_same_arrays(reference, digit_folder, tmp_path):
    code, arrays = run_topk(digit_folder[0], tmp_path, "--jobs", "2")
    assert code == 0
    assert_same(arrays, reference)


class Interrupt(Exception):
    pass


def test_resume_after_an_interrupted_run(reference, digit_folder, tmp_path, monkeypatch):
    def stop_after_five(done):
        if done == 5:
            raise Interrupt

    monkeypatch.setattr(runners, "HOOKS", [stop_after_five])
    with pytest.raises(Interrupt):
        run_topk(digit_folder[0], tmp_path)
    work = tmp_path / "shards" / f"topk-{LAYER}"
    first = {p.name: p.stat().st_mtime_ns for p in work.glob("scan-*.npz")}
    assert len(first) == 5 and not list(work.glob(".*"))  # five whole files, no temporary left
    calls = []
    monkeypatch.setattr(runners, "HOOKS", [calls.append])
    code, arrays = run_topk(digit_folder[0], tmp_path, "--resume", "--overwrite")
    assert code == 0
    assert calls[:5] == [6, 7, 8, 9, 10]  # only the five missing scan shards ran
    assert {p.name: p.stat().st_mtime_ns for p in work.glob("scan-*.npz") if p.name in first} == first
    assert_same(arrays, reference)


def test_resume_recomputes_shards_made_with_other_settings(
    reference, digit_folder, tmp_path, monkeypatch, capsys
):
    """The provenance check can fail: shards of a top-5 run are not reused for a top-9 run, and
    --resume says which setting made them unusable."""
    from minicnn.cli.main import main

    args = ["topk", "--image", str(digit_folder[0]), "--out", str(tmp_path), *TOPK_ARGS, "--k", "5"]
    assert main(args) == 0  # the last --k wins
    scans = len(list((tmp_path / "shards" / f"topk-{LAYER}").glob("scan-*.npz")))
    capsys.readouterr()
    calls = []
    monkeypatch.setattr(runners, "HOOKS", [calls.append])
    code, arrays = run_topk(digit_folder[0], tmp_path, "--resume", "--overwrite")
    assert code == 0 and calls[0] == 1  # nothing reused: every shard ran again
    assert f"recomputed: {scans} scan shard file(s) made with a different k" in capsys.readouterr().out
    assert_same(arrays, reference)


def test_why_a_shard_is_not_reused(tmp_path):
    from minicnn.jobs.shards import Shard, load_shard, provenance, save_shard

    mine = provenance("scan", "ab", Shard(0, 4), None, k=9)
    path = save_shard(tmp_path / "s.npz", {"a": np.zeros(2)}, {**mine, "code": "0.1+other", "k": 5})
    assert load_shard(path, mine) == (None, "code, k")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert load_shard(tmp_path / "bad.npz", mine) == (None, "unreadable")
    assert load_shard(tmp_path / "missing.npz", mine) == (None, None)
    got, why = load_shard(save_shard(tmp_path / "mine.npz", {"a": np.arange(2.0)}, mine), mine)
    assert why is None and got.keys() == {"a"} and got["a"].tolist() == [0.0, 1.0]


def test_a_local_worker_killed_during_the_run(reference, digit_folder, tmp_path, monkeypatch):
    """A dead worker breaks the process pool; a new pool runs the unfinished shards."""
    import multiprocessing
    import os
    import signal

    killed = []

    def kill_one(done):
        if done == 2 and not killed:
            victim = multiprocessing.active_children()[0]
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim.pid)

    monkeypatch.setattr(runners, "HOOKS", [kill_one])
    code, arrays = run_topk(digit_folder[0], tmp_path, "--jobs", "2")
    assert code == 0 and killed
    assert_same(arrays, reference)
