"""The guard's child process and the one load path (minicnn.io.guard, minicnn.io.source).

Each hostile case is built here: modules planted beside the model, a sparse 2 TB copy of a file that
makes libhdf5 hang, SIGTERM or SIGKILL to the parent while its child hangs, a file swapped right
after the guard accepted it; then the outcome is checked (no marker, a bounded time, no child left,
the checked bytes loaded). Plus: the shipped digests, the path opened once (strace), no import
cycle in minicnn/io.
"""

from __future__ import annotations

import ast
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import fuzz_cases as fc
import numpy as np
import pytest

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.io import guard
from minicnn.io.source import open_model_file

ROOT = Path(__file__).resolve().parents[2]
# what pip's console script ``minicnn`` runs: the script's own folder, not the current one, is
# first on sys.path
ENTRY = "import sys\nfrom minicnn.cli.main import main\nsys.exit(main())\n"


def _small_model(path: Path, seed: int) -> Path:
    """A valid format-2 file of fuzz_cases' small network, weights shifted by ``seed`` (not shipped)."""
    net = fc.small_net()
    for layer in net.layers:
        for key in layer.param_shapes():
            getattr(layer, key)[...] += np.float32(seed)
    return mc.save(net, path)


def _weights(net) -> list[np.ndarray]:
    return [np.array(getattr(layer, key)) for layer in net.layers for key in layer.param_shapes()]


@pytest.fixture()
def entry(tmp_path) -> list[str]:
    """The command line as an installed ``minicnn`` command starts it."""
    script = tmp_path / "bin" / "minicnn_entry.py"
    script.parent.mkdir()
    script.write_text(ENTRY)
    return [sys.executable, str(script)]


def _env(**extra) -> dict:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, **extra)


@pytest.fixture(scope="module")
def hanging(tmp_path_factory) -> Path:
    """A file one flipped byte away from the old shipped model that makes libhdf5 loop forever."""
    folder = tmp_path_factory.mktemp("hang")
    src = fc.format1_skeleton(folder / "skeleton.h5").read_bytes()
    path = folder / "hang.h5"
    path.write_bytes(fc.flipped(src, fc.HANG_OFFSETS[0], 0xFF))
    return path


@pytest.fixture(params=["console-script", "python -m"])
def any_entry(request, entry) -> list[str]:
    """Both ways the README starts minicnn: the console script and ``python -m minicnn`` (which puts
    the current folder first on sys.path)."""
    return entry if request.param == "console-script" else [sys.executable, "-m", "minicnn"]


def test_modules_planted_beside_the_model_never_run(tmp_path, any_entry):
    """h5py.py, numpy.py and json.py in the current folder write a marker when imported; ``minicnn
    info model.h5`` there guards the file in a child (it is not a shipped model) and reads it."""
    entry = any_entry
    work = tmp_path / "work"
    work.mkdir()
    marker = tmp_path / "planted-code-ran"
    for name in ("h5py", "numpy", "json"):
        (work / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write({name!r})\n")
    _small_model(work / "model.h5", seed=1)
    # the hostile case is real: a child started with ``python -c`` imports them from there
    subprocess.run([sys.executable, "-c", "import h5py"], cwd=work, capture_output=True)
    assert marker.exists()
    marker.unlink()
    done = subprocess.run([*entry, "info", "model.h5"], cwd=work, env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "conv_a" in done.stdout  # the model was read (its first layer's name is printed)
    assert not marker.exists(), marker.read_text()


def test_time_limit_is_bounded(hanging, tmp_path, monkeypatch):
    """The limit grows by a second per 100 MB but stops at MAX_TIMEOUT: a sparse 2 TB copy of a
    hanging file would otherwise be given 20,000 s. With the cap lowered to 3 s, that copy is refused
    in about 3 s."""
    monkeypatch.delenv("MINICNN_GUARD_TIMEOUT", raising=False)
    assert guard.time_limit(500 * 10**6) == pytest.approx(guard.DEFAULT_TIMEOUT + 5.0)
    assert guard.time_limit(2 * 10**12) == guard.MAX_TIMEOUT == 60.0
    monkeypatch.setenv("MINICNN_GUARD_TIMEOUT", "120")  # a user who asks for more gets it
    assert guard.time_limit(2 * 10**12) == 120.0
    big = tmp_path / "big.h5"
    shutil.copy(hanging, big)
    try:
        os.truncate(big, 2 * 10**12)
    except OSError:
        pytest.skip("this file system cannot hold a sparse 2 TB file")
    monkeypatch.setenv("MINICNN_GUARD_TIMEOUT", "1")
    monkeypatch.setattr(guard, "MAX_TIMEOUT", 3.0)
    start = time.perf_counter()
    with pytest.raises(MinicnnError, match=r"did not finish within 3\.0 s"):
        mc.load(big, guard=True)
    assert time.perf_counter() - start < 8


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (an orphan's zombie waits for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the child")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_child_dies_with_its_parent(hanging, entry, sig):
    """``minicnn info hang.h5`` with a 60 s limit: the child hangs inside libhdf5; a signal to the
    parent ends the child too within seconds (SIGTERM: the parent kills it on its way out; SIGKILL:
    the kernel, through PR_SET_PDEATHSIG)."""
    parent = subprocess.Popen(
        [*entry, "info", str(hanging)],
        env=_env(MINICNN_GUARD_TIMEOUT="60"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        children = []
        while not children and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.1)
            children = _children(parent.pid)
        assert children, "the guard's child never started"
        time.sleep(1.0)  # well inside libhdf5's loop by now
        assert all(_alive(c) for c in children)
        parent.send_signal(sig)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(c) for c in children), "the child outlived its parent"
        assert parent.returncode in ((128 + 15, -15) if sig == signal.SIGTERM else (-9,))
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_file_swapped_after_the_check_is_not_read(tmp_path, monkeypatch):
    """Right after the guard accepts model.h5, another model is renamed onto that path (a hook
    around the check): the load returns the checked file's weights, not the newcomer's."""
    path = _small_model(tmp_path / "model.h5", seed=1)
    other = _small_model(tmp_path / "other.h5", seed=2)
    checked, swapped = _weights(mc.load(path)), _weights(mc.load(other))
    assert not np.array_equal(checked[0], swapped[0])
    real = guard.check_in_child
    calls = []

    def check_then_swap(source, timeout=None):
        real(source, timeout)
        calls.append(source.name)
        os.replace(other, path)  # the name now points at another file

    monkeypatch.setattr(guard, "check_in_child", check_then_swap)
    net = mc.load(path, guard=True)
    assert calls == [path]
    for got, want in zip(_weights(net), checked):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(_weights(mc.load(path)), swapped):  # the swap did happen
        np.testing.assert_array_equal(got, want)


def test_shipped_models_are_recognised_by_digest(tmp_path):
    """Every shipped model's size and SHA-256 are in guard.SHIPPED (a retrained model must update
    it); a one-byte change of a copy is not shipped any more, so it is guarded."""
    from minicnn.paths import SHIPPED, shipped

    models = [name for name, (_, kind) in SHIPPED.items() if kind == "model"]
    assert len(models) == 3
    for name in models:
        path = shipped(name)
        assert guard.SHIPPED[path.name] == (path.stat().st_size, guard.file_sha256(path))
        with open_model_file(path) as source:
            assert guard.is_shipped(source)
    copy = tmp_path / "copy.h5"
    data = bytearray(shipped("mnist_gap").read_bytes())
    data[-1] ^= 1
    copy.write_bytes(bytes(data))
    with open_model_file(copy) as source:
        assert not guard.is_shipped(source)


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_the_named_file_is_opened_once(tmp_path):
    """strace of a guarded load, parent and child: the path is opened once (by minicnn.io.source),
    and nothing else is opened for the file: the child and the parent's h5py read that descriptor."""
    path = _small_model(tmp_path / "model.h5", seed=1)
    log = tmp_path / "strace.log"
    code = f"import minicnn as mc; mc.load({str(path)!r}, guard=True)"
    done = subprocess.run(
        ["strace", "-f", "-e", "trace=open,openat", "-o", str(log), sys.executable, "-c", code],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 and "ptrace" in done.stderr:
        pytest.skip("ptrace is not allowed here")
    assert done.returncode == 0, done.stderr
    opens = [line for line in log.read_text().splitlines() if "open" in line]
    assert len({line.split()[0] for line in opens}) >= 2  # the child ran (its own process id)
    by_name = [line for line in opens if "model.h5" in line]
    assert len(by_name) == 1 and "= -1" not in by_name[0], by_name
    assert not [line for line in opens if "/fd/" in line and "= -1" not in line]


def _io_imports() -> dict[str, set[str]]:
    """module -> the minicnn.io modules it imports (top level or inside functions), from the AST."""
    folder = ROOT / "minicnn" / "io"
    modules = {p.stem for p in folder.glob("*.py")}
    graph = {}
    for path in folder.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "minicnn.io":
                deps |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("minicnn.io."):
                deps.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[2] for a in node.names if a.name.startswith("minicnn.io.")}
        graph[path.stem] = deps - {path.stem}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a list of modules, first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep) :] + [dep]
            if dep not in state and (found := visit(dep, path + [dep])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [node])):
            return found
    return None


def test_no_import_cycle_in_io():
    graph = _io_imports()
    assert "guard" in graph["loader"] and "loader" not in graph["guard"]
    assert _cycle(graph) is None, _cycle(graph)
    # the check finds a cycle when there is one
    assert _cycle({**graph, "guard": graph["guard"] | {"loader"}}) == ["guard", "loader", "guard"]
