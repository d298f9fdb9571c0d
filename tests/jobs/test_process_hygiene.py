"""A ``minicnn topk --jobs 2`` run ended from outside leaves nothing behind: after SIGTERM or kill -9
of the client, its worker processes and the multiprocessing resource tracker are gone within
seconds; after Ctrl-C (SIGINT to the whole process group, as a terminal sends it) the run ends within
5 s with exit code 130, no temporary file, and ``--resume`` continues from the shards it finished.

Each test starts a real ``python -m minicnn`` subprocess on the shipped digits (tiled to 5,000
images so that the run is still going when the signal comes) and watches the process table through
/proc (Linux only), recording every descendant while the client is alive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minicnn.paths import HELDOUT

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")

LAYER = "block2_conv1_relu"
TILES = 10  # copies of the 500 held-out digits
SHARDS = TILES * 500 // 25  # --shard-size 25


def _stat(pid: int):
    """(ppid, state) of a process from /proc, or None when it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0]


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` (children, their children, ...)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            got = _stat(int(entry))
            if got is not None and got[1] != "Z":
                parents[int(entry)] = got[0]
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped by its new parent, is not alive)."""
    got = _stat(pid)
    return got is not None and got[1] != "Z"


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The 500 shipped held-out digits tiled TILES times, in an .npz."""
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    with np.load(HELDOUT) as data:
        np.savez(path, images=np.tile(data["images"], (TILES, 1, 1)))
    return path


def start(digits, out):
    args = [sys.executable, "-m", "minicnn", "topk", "--image", str(digits), "--out", str(out), "--layer",
            LAYER, "--channels", "0", "1", "--k", "3", "--shard-size", "25", "--jobs", "2", "--no-progress",
            "--overwrite"]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=_as_in_a_terminal)  # fmt: skip


def _as_in_a_terminal():
    """The client's Ctrl-C as a terminal's foreground job has it: SIGINT at its default. A process
    inherits an ignored SIGINT (a shell runs ``cmd &`` with SIGINT ignored, so a CI script started
    in the background passes it down to pytest and from there to every child), and Python then
    leaves it ignored: the client would run to its end and exit 0."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def running(proc, out, timeout=120.0):
    """Wait until the client has its two workers and the resource tracker and has saved at least one
    shard; returns every descendant's pid."""
    work = out / "shards" / f"topk-{LAYER}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        kids = descendants(proc.pid)
        if len(kids) >= 3 and list(work.glob("scan-*.npz")):
            return kids
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"the run did not start its workers within {timeout} s")


def gone_within(pids, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    for pid in pids:  # do not leave them behind for the next test
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_workers_die_with_the_client(digits, tmp_path, signum):
    proc = start(digits, tmp_path)
    kids = running(proc, tmp_path)
    os.kill(proc.pid, signum)  # the client only, not its group
    proc.communicate(timeout=30)
    assert proc.returncode == (128 + 15 if signum == signal.SIGTERM else -signal.SIGKILL)
    assert gone_within(kids, 5.0), [pid for pid in kids if alive(pid)]
    if signum == signal.SIGTERM:  # kill -9 cannot be handled: a temp may stay, never a half shard file
        assert not list((tmp_path / "shards").rglob(".*"))  # no temporary file


def test_ctrl_c_ends_quickly_and_resume_continues(digits, tmp_path):
    proc = start(digits, tmp_path)
    kids = running(proc, tmp_path)
    start_time = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole foreground group
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - start_time < 5.0
    assert proc.returncode == 130
    err = err.decode()
    assert "Traceback" not in err and "interrupted" in err, err
    assert gone_within(kids, 5.0)
    work = tmp_path / "shards" / f"topk-{LAYER}"
    done = len(list(work.glob("scan-*.npz")))
    assert 0 < done < SHARDS and not list(work.glob(".*"))  # whole shard files, no temporary
    again = subprocess.run(
        [sys.executable, "-m", "minicnn", "topk", "--image", str(digits), "--out", str(tmp_path), "--layer",
         LAYER, "--channels", "0", "1", "--k", "3", "--shard-size", "25", "--no-progress", "--overwrite",
         "--resume"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"resumed: {done} of {SHARDS} scan shard(s)" in again.stdout


def _worker_settings():
    import os

    import numba

    return os.environ.get("OPENBLAS_THREAD_TIMEOUT"), list(numba.config.THREADING_LAYER_PRIORITY)


def test_a_local_worker_runs_with_minicnns_process_settings(monkeypatch):
    """A worker of ``--jobs N`` is minicnn's own process, like the command: its initializer applies
    tune_process (OpenBLAS's short thread timeout, Numba's layer order without OpenMP), which the
    spawned interpreter would otherwise not have."""
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    from minicnn.jobs.lifeline import start_worker
    from minicnn.process import OPENBLAS_TIMEOUT

    # the spawned worker inherits this environment: without these, only its initializer sets them
    # (a test that ran the command in this process has applied tune_process here already)
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    monkeypatch.delenv("NUMBA_THREADING_LAYER", raising=False)
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx, initializer=start_worker, initargs=(1, os.getpid())) as pool:
        timeout, priority = pool.submit(_worker_settings).result(timeout=120)
    assert timeout == OPENBLAS_TIMEOUT
    assert priority == ["tbb", "workqueue", "omp"]  # Numba's own order puts omp before workqueue
