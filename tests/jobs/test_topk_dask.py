"""Top-9 on a Dask cluster of two worker processes on 127.0.0.1, started and stopped here: the same
arrays bit for bit as in this process, also when one worker is killed during the run (its shards
run again elsewhere). Skipped where distributed is not installed, a failure in CI."""

from __future__ import annotations

import os
import signal

import pytest
from jobs_support import assert_same, run_topk
from support import oracle

from minicnn.jobs import runners


@pytest.fixture(scope="module")
def cluster():
    distributed = oracle("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as local,
        distributed.Client(local, set_as_default=False) as client,
    ):
        yield local.scheduler_address, client


def test_dask_cluster_gives_the_same_arrays(cluster, reference, digit_folder, tmp_path):
    code, arrays = run_topk(digit_folder[0], tmp_path, "--scheduler", cluster[0])
    assert code == 0
    assert_same(arrays, reference)


def test_a_worker_killed_during_the_run(cluster, reference, digit_folder, tmp_path, monkeypatch):
    address, client = cluster
    pids = set(client.run(os.getpid).values())
    killed = []

    def kill_one(done):
        if done == 2 and not killed:  # shards still running on both workers
            victim = sorted(pids)[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    monkeypatch.setattr(runners, "HOOKS", [kill_one])
    code, arrays = run_topk(digit_folder[0], tmp_path, "--scheduler", address)
    assert code == 0 and killed
    client.wait_for_workers(2, timeout=60)
    assert killed[0] not in set(client.run(os.getpid).values())  # it really died (and was replaced)
    assert_same(arrays, reference)
