"""Who runs the shards: this process (default), local worker processes (``--jobs N``) or an existing
Dask cluster (``--scheduler tcp://HOST:PORT``). Every runner runs the same function on the same
tasks and hands each result to the client as it finishes; the job merges them with an associative,
commutative merge, so the runner changes how fast, never what.

Failures: a task whose worker dies is run again (local processes: the pool is restarted for the
unfinished tasks; Dask: the scheduler moves it to another worker, and ``retries`` re-runs a task
that raised); a MinicnnError raised by a task (an unreadable dataset path, a different model file)
ends the run with its one line. Progress is one tqdm bar of shards on the client (stderr).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass

from minicnn.errors import MinicnnError

# Called as hook(done) on the client after each finished task (done: tasks finished so far). Tests
# use them to interrupt a run halfway or to kill a worker while others are running.
HOOKS: list = []


@dataclass(frozen=True)
class Runner:
    """jobs: local worker processes (1: in this process); scheduler: a Dask scheduler address
    (overrides jobs); threads: BLAS/Numba threads per local worker; retries: re-runs of a failed
    task; timeout: seconds for each step of joining a Dask cluster (``cluster.connect``); progress:
    the tqdm bar; processes: use worker processes even for jobs=1 (to measure what one worker
    process costs)."""

    jobs: int = 1
    scheduler: str | None = None
    threads: int = 1
    retries: int = 2
    timeout: float = 30.0
    progress: bool = True
    processes: bool = False

    def describe(self) -> str:
        if self.scheduler:
            return f"Dask cluster at {self.scheduler}"
        if self.jobs > 1 or self.processes:
            return f"{self.jobs} local worker processes, {self.threads} thread(s) each"
        return "in this process"


class Workers:
    """A runner's workers, kept for every phase of a job (a process pool or a Dask client is
    started once): ``with Workers(runner) as workers: workers.run(fn, tasks, on_result)``."""

    def __init__(self, runner: Runner):
        if isinstance(runner.jobs, bool) or not isinstance(runner.jobs, int) or runner.jobs < 1:
            raise MinicnnError(f"--jobs must be a positive integer, got {runner.jobs!r}")
        if runner.threads < 1:
            raise MinicnnError(f"--threads must be a positive integer, got {runner.threads!r}")
        self.runner, self.pool, self.client, self._sigterm = runner, None, None, None

    def __enter__(self):
        if self.runner.scheduler:
            from minicnn.jobs.cluster import connect

            self.client = connect(self.runner.scheduler, self.runner.timeout)
        elif self.runner.jobs > 1 or self.runner.processes:
            self._sigterm = _sigterm_raises()
            self._sigterm.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb):
        """A normal end waits for the workers to finish; an exception (Ctrl-C, SIGTERM, a failed
        task) kills them at once: a running shard is abandoned, never half-saved (the client saves)."""
        try:
            self._stop_pool(kill=exc_type is not None)
            if self.client is not None:
                self.client.close()
        finally:
            if getattr(self, "_sigterm", None) is not None:
                self._sigterm.__exit__(None, None, None)
                self._sigterm = None

    def run(self, fn, tasks: list, on_result, desc: str = "shards", done: int = 0) -> None:
        """Run ``fn(task)`` for every task and call ``on_result(i, result)`` on the client as each
        finishes (in any order; i: the task's position in ``tasks``). ``done``: tasks finished
        before (resumed), for the bar."""
        from tqdm.auto import tqdm

        bar = tqdm(
            total=done + len(tasks), initial=done, desc=desc, unit="shard", disable=not self.runner.progress
        )
        count = [done]

        def finished(i, result):
            on_result(i, result)
            bar.update(1)
            count[0] += 1
            for hook in HOOKS:
                hook(count[0])

        try:
            if not tasks:
                return
            if self.client is not None:
                self._dask(fn, tasks, finished)
            elif self.runner.jobs > 1 or self.runner.processes:
                self._processes(fn, tasks, finished)
            else:
                for i, task in enumerate(tasks):
                    finished(i, fn(task))
        finally:
            bar.close()

    def _stop_pool(self, kill: bool) -> None:
        """Shut the pool down: wait for its workers, or (kill) SIGKILL them first and wait for
        nothing."""
        from minicnn.jobs.lifeline import kill_workers

        if self.pool is None:
            return
        if kill:
            # NOTE: no future is cancelled here: Python 3.11's pool thread, finding a worker dead,
            # sets an exception on every pending future and raises on a cancelled one
            kill_workers(self.pool)
            self.pool.shutdown(wait=False)
        else:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool = None

    def _new_pool(self):
        """A spawn-context process pool (no fork of a process that holds BLAS/Numba threads) whose
        workers die with this process (``lifeline``)."""
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        from minicnn.jobs.lifeline import start_worker
        from minicnn.jobs.threads import thread_environment

        with thread_environment(self.runner.threads):
            return ProcessPoolExecutor(
                max_workers=self.runner.jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_worker,
                initargs=(self.runner.threads, os.getpid()),
            )

    def _processes(self, fn, tasks, finished) -> None:
        """Local processes; a pool broken by a dead worker is replaced and only the unfinished
        tasks are submitted again."""
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        pending = list(range(len(tasks)))
        for attempt in range(self.runner.retries + 1):
            if self.pool is None:
                self.pool = self._new_pool()
            futures = {}
            try:
                # spawned workers inherit the thread variables while the pool starts them
                from minicnn.jobs.threads import thread_environment

                with thread_environment(self.runner.threads):
                    futures = {self.pool.submit(fn, tasks[i]): i for i in pending}
                for future in as_completed(futures):
                    i = futures[future]
                    finished(i, future.result())
                    pending.remove(i)
                return
            except BrokenProcessPool:
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.pool = None
                if attempt == self.runner.retries:
                    raise MinicnnError(
                        f"a worker process died {attempt + 1} times; {len(pending)} shard(s) not done "
                        "(finished shards are kept: run again with --resume)"
                    ) from None
            except BaseException:
                self._stop_pool(kill=True)  # Ctrl-C, SIGTERM, a failed task: now, not after the shards
                raise

    def _dask(self, fn, tasks, finished) -> None:
        """Submit every task to the cluster and gather them as they finish; ``retries`` re-runs a
        task that raised, and the scheduler moves the tasks of a worker that died to another."""
        from distributed import as_completed

        futures = {}
        try:
            for i, task in enumerate(tasks):
                futures[self.client.submit(fn, task, retries=self.runner.retries, pure=False)] = i
            for future in as_completed(list(futures), loop=self.client.loop):
                finished(futures[future], future.result())
        finally:
            self.client.cancel(list(futures))


def _terminate(signum, frame):
    from minicnn.io.atomic import Terminated

    raise Terminated(128 + signum)


@contextlib.contextmanager
def _sigterm_raises():
    """While local workers run, SIGTERM raises ``io.atomic.Terminated`` (exit code 143) in the main
    thread instead of ending the process at once, so that ``Workers`` kills its processes and no
    temporary file is left; a handler someone else installed is left alone."""
    install = threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    )
    if install:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        if install:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
