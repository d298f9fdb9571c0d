"""``--scheduler`` at something that is not a working Dask cluster ends with one line, exit 2, within
a bounded time and without a traceback, even one printed later at exit: a server that accepts and
never speaks, one that answers HTTP, a real Dask scheduler with no worker, and a closed port. Each
case runs ``python -m minicnn topk`` as a subprocess (what is printed at interpreter exit counts)
against servers this test starts on 127.0.0.1 and stops."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from jobs_support import LAYER
from support import oracle

from minicnn.paths import HELDOUT

TIMEOUT = 2.0  # --scheduler-timeout: each step of joining the cluster


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    with np.load(HELDOUT) as data:
        np.savez(path, images=data["images"][:20])
    return path


class Server:
    """A TCP server on 127.0.0.1 whose every connection gets ``reply`` (None: nothing, ever)."""

    def __init__(self, reply: bytes | None):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.reply, self.conns = reply, []
        self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)  # kept open: a silent peer, not a closed one
            if self.reply is not None:
                try:
                    conn.recv(65536)
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def close(self):
        self.sock.close()
        for conn in self.conns:
            conn.close()


def run_topk(digits, tmp_path, address):
    args = [sys.executable, "-m", "minicnn", "topk", "--image", str(digits), "--out", str(tmp_path / "o"),
            "--layer", LAYER, "--channels", "0", "--k", "3", "--no-progress", "--scheduler", address,
            "--scheduler-timeout", str(TIMEOUT)]  # fmt: skip
    start = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return done, time.monotonic() - start


def check_one_line(done, seconds, bound, *expected):
    err = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(err) == 1, done.stderr  # no traceback, no "Exception ignored", no log lines
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    for text in expected:
        assert text in err[0], err[0]
    assert seconds < bound, seconds  # interpreter start and model load included


# startup of python -m minicnn (~3-10 s on a loaded machine) plus the steps' timeouts
BOUND = 30.0 + 3 * TIMEOUT


def test_a_server_that_accepts_and_never_speaks(digits, tmp_path):
    server = Server(None)
    try:
        done, seconds = run_topk(digits, tmp_path, server.address)
    finally:
        server.close()
    check_one_line(done, seconds, BOUND, "no answer from the Dask scheduler at", server.address,
                   f"within {TIMEOUT:g} s")  # fmt: skip


def test_a_server_that_answers_http(digits, tmp_path):
    server = Server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nBad Request" * 50)
    try:
        done, seconds = run_topk(digits, tmp_path, server.address)
    finally:
        server.close()
    check_one_line(done, seconds, BOUND, f"the server at {server.address} is not a Dask scheduler")


def test_a_closed_port(digits, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as sock:
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"  # closed again when the block ends
    done, seconds = run_topk(digits, tmp_path, address)
    check_one_line(done, seconds, BOUND, f"cannot reach the Dask scheduler at {address}")


def test_a_dask_scheduler_without_workers(digits, tmp_path):
    distributed = oracle("distributed")
    with distributed.LocalCluster(
        n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        done, seconds = run_topk(digits, tmp_path, address)
    check_one_line(
        done, seconds, BOUND, f"no worker joined the Dask scheduler at {address}", f"within {TIMEOUT:g} s"
    )
