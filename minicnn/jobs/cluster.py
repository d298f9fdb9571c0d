"""Joining an existing Dask cluster (``--scheduler tcp://HOST:PORT``), bounded end to end.

``distributed.Client`` waits forever for a server that accepts a connection and never speaks, and a
server that answers something else (an HTTP server, a typo'd port) can leave a traceback printed at
exit by the half-built client. So the client is made only after four checks, each bounded by the
same ``timeout`` (seconds), each failure one MinicnnError line:

1. connect: a TCP connection to the address (refused or unreachable: "cannot reach");
2. handshake: Dask's ``identity`` message, asked on a connection of our own that we close
   ourselves, and the answer must come from a scheduler ("no answer", "is not a Dask scheduler");
3. workers: at least one worker has joined the scheduler ("no worker joined");
4. first task: a tiny task returns this package's code version from a worker; a worker that cannot
   import minicnn, or runs other code, is refused here, once, rather than in every shard.

A shard itself may take as long as it takes: only the way to the first task is bounded.
"""

from __future__ import annotations

import threading

from minicnn.errors import MinicnnError, install_hint


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def _ask_identity(address: str, timeout: float) -> dict:
    """Steps 1 and 2: a TCP connection, then Dask's own connection and handshake and the question
    who the server is, on an event loop of our own (in a thread: the caller may be inside a running
    loop, e.g. a notebook), all within ``timeout``; returns the server's answer (a dict)."""
    import asyncio
    import socket

    from distributed.comm import connect
    from distributed.comm.addressing import get_address_host_port

    try:
        host, port = get_address_host_port(address)
    except ValueError as exc:
        raise MinicnnError(
            f"--scheduler {address!r}: expected tcp://HOST:PORT ({_first_line(exc)})"
        ) from None
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise MinicnnError(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({_first_line(exc)})"
        ) from None
    outcome: dict = {}

    async def ask():
        comm = await connect(address, timeout=timeout)  # Dask's connect exchanges messages too
        try:
            await comm.write({"op": "identity"})
            return await comm.read()
        finally:
            comm.abort()

    def run():
        try:
            outcome["answer"] = asyncio.run(asyncio.wait_for(ask(), timeout))
        except BaseException as exc:  # reported on the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="minicnn-dask-handshake", daemon=True)
    thread.start()
    thread.join(timeout + 5.0)  # wait_for ends it first; this bounds the thread itself
    error = outcome.get("error")
    if "answer" not in outcome and (error is None or isinstance(error, TimeoutError)):
        raise MinicnnError(
            f"no answer from the Dask scheduler at {address} within {timeout:g} s (the server there accepts "
            "connections but does not speak Dask's protocol)"
        )
    if error is not None:
        raise MinicnnError(
            f"the server at {address} is not a Dask scheduler (its answer is not Dask's protocol)"
        )
    answer = outcome["answer"]
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind != "Scheduler":
        raise MinicnnError(f"the server at {address} is not a Dask scheduler (it says it is {kind!r})")
    return answer


def connect(address: str, timeout: float):
    """A ``distributed.Client`` of the scheduler at ``address`` with at least one worker that runs
    this minicnn, or one MinicnnError line within about 3 x ``timeout`` seconds (see the module
    docstring)."""
    try:
        from distributed import Client
    except ImportError:
        raise MinicnnError(f"--scheduler needs Dask distributed: {install_hint('dask')}") from None
    from minicnn.jobs.shards import code_version

    _ask_identity(address, timeout)
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:
        raise MinicnnError(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({_first_line(exc)})"
        ) from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise MinicnnError(
                f"no worker joined the Dask scheduler at {address} within {timeout:g} s"
            ) from None
        try:
            theirs = client.submit(code_version, pure=False).result(timeout=timeout)
        except TimeoutError:
            raise MinicnnError(
                f"the workers of the Dask scheduler at {address} ran no task within {timeout:g} s"
            ) from None
        except Exception as exc:
            raise MinicnnError(
                f"the workers of the Dask scheduler at {address} cannot run minicnn ({_first_line(exc)})"
            ) from None
        if theirs != code_version():
            raise MinicnnError(
                f"the Dask workers at {address} run minicnn {theirs} but this client runs {code_version()}: "
                "install the same version on every host"
            )
    except BaseException:
        client.close(timeout=timeout)
        raise
    return client
