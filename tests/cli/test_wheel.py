"""A normal install works anywhere (issue 17): build the wheel, install it into a fresh virtual
environment and run ``minicnn demo`` and one tool from an empty folder, with no source tree on the
path. The shipped models and samples must come with the package (pyproject.toml maps the top-level
weights/ folder to the package data ``minicnn.weights``).

Offline: the wheel is built with the installed setuptools (--no-build-isolation) and the venv sees
the system's numpy, numba, ... (--system-site-packages), so nothing is downloaded. About 15 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
from cli_helpers import REPO


def run(cmd, cwd, timeout=300) -> subprocess.CompletedProcess:
    # no PYTHONPATH: the installed package alone must do; no progress bars in the logs
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MINICNN_WEIGHTS")}
    env["TQDM_DISABLE"] = "1"
    proc = subprocess.run(
        list(map(str, cmd)), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, (
        f"{cmd}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python of a fresh venv holding only the built wheel of minicnn, an empty folder)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("minicnn", "weights"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    dist = root / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, source],
        root,
    )
    (wheel,) = dist.glob("minicnn_vis-*.whl")  # the distribution's name, normalised
    with zipfile.ZipFile(wheel) as z:
        packed = set(z.namelist())
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], root)
    python = venv / "bin" / "python"
    run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
        root,
    )
    empty = root / "empty"
    empty.mkdir()
    return python, empty, (source, packed)


def test_the_wheel_holds_every_package_and_the_shipped_files(installed):
    *_, (source, packed) = installed  # the copy that was built: the checkout may change meanwhile
    on_disk = {
        p.relative_to(source).as_posix()
        for p in (source / "minicnn").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert on_disk <= packed, f"left out of the wheel: {sorted(on_disk - packed)}"
    shipped = {p.relative_to(source).as_posix() for p in (source / "weights").rglob("*") if p.is_file()}
    # README's gallery pictures are not package data; every model, sample and photo is
    shipped = {"minicnn/" + s for s in shipped if not s.startswith("weights/gallery/")}
    assert shipped <= packed, f"left out of the wheel: {sorted(shipped - packed)}"


def test_the_installed_package_finds_the_shipped_files(installed):
    python, empty, _ = installed
    where = run(
        [python, "-c", "import minicnn, minicnn.paths as p; print(minicnn.__file__); print(p.WEIGHTS_DIR)"],
        empty,
    )
    package, weights = (Path(line) for line in where.stdout.split())
    venv = python.parent.parent
    assert venv in package.parents, f"imported {package}, not the installed wheel"
    assert weights == package.parent / "weights"
    names = sorted(p.name for p in weights.iterdir())
    assert {"mnist_vgg.h5", "mnist_gap.h5", "mnist_heldout.npz", "clutter.npz", "photos"} <= set(names)
    assert len(list((weights / "photos").glob("*.jpg"))) == 4


def test_demo_and_a_tool_run_from_an_empty_folder(installed):
    python, empty, _ = installed
    minicnn = python.parent / "minicnn"  # the console script of the wheel
    version = run([minicnn, "--version"], empty).stdout.strip()
    assert version == f"minicnn {tomllib.loads((REPO / 'pyproject.toml').read_text())['project']['version']}"
    demo = run([minicnn, "demo"], empty)
    index = empty / "minicnn-out" / "demo" / "index.html"
    assert "failed" not in demo.stdout and f"open {index.resolve()}" in demo.stdout and index.is_file()
    tool = run([python, "-m", "minicnn", "saliency", "--json", "--save-arrays", "--out", "sal"], empty)
    summary = json.loads(tool.stdout)
    assert summary["model"].endswith("mnist_vgg.h5") and len(summary["files"]) == 8
    assert all(Path(f).is_file() and Path(f).parent == empty / "sal" for f in summary["files"])


def test_the_extras_hint_keeps_the_installed_copy(installed):
    """The hint a missing extra prints (``pip install "minicnn-vis[onnx]"``) resolves to the installed
    copy and adds the extra's dependencies: with --no-index any look-up of the name on an index would
    fail, and here every dependency is already in the system's site-packages."""
    from minicnn.errors import install_hint

    python, empty, _ = installed
    requirement = install_hint("onnx").split()[-1].strip('"')
    r = run([sys.executable, "-m", "pip", "--python", python, "install", "--no-index", requirement], empty)
    assert "Requirement already satisfied: minicnn-vis" in r.stdout, r.stdout


def test_bench_scripts_from_an_installed_package(installed):
    """benchmarks/ is not installed: outside a checkout --list says in one line where the scripts
    are (exit 2); from a checkout's root the installed command finds them."""
    python, empty, _ = installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MINICNN_WEIGHTS")}
    argv = [str(python.parent / "minicnn"), "bench", "--list"]
    missing = subprocess.run(argv, cwd=empty, env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and missing.stdout == "", missing
    assert len(missing.stderr.splitlines()) == 1 and "source checkout" in missing.stderr, missing.stderr
    listed = run(argv, REPO).stdout.split()
    assert listed == sorted(p.stem for p in (REPO / "benchmarks").glob("*.py") if p.name != "harness.py")


def test_readme_install_order_leaves_nothing_that_shadows_the_editable_install(tmp_path):
    """README's order on one machine: ``pip install .``, run a command (Numba compiles and caches
    kernels), then ``pip install -e ".[test,train]"``. Uninstalling the first copy must leave no folder named
    minicnn in site-packages (a cache written inside the package would be one): such a folder is a
    namespace package that Python's path finder returns before the editable install's finder, so
    ``import minicnn`` would find an empty package."""
    source = tmp_path / "checkout"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("minicnn", "weights"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], tmp_path)
    python = venv / "bin" / "python"
    # README's commands as written, offline: every dependency, the test and train extras' too, is
    # already in the system's site-packages, which the venv sees (--no-index would fail otherwise)
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--no-index",
        "--no-build-isolation",
        "-q",
    ]
    run([*pip, source], tmp_path)
    run([venv / "bin" / "minicnn", "saliency", "--no-progress", "--out", work / "sal"], work)
    run([*pip, "-e", f"{source}[test,train]"], tmp_path)
    site = Path(
        run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], work).stdout.strip()
    )
    left = (
        sorted(str(p.relative_to(site)) for p in (site / "minicnn").rglob("*"))
        if (site / "minicnn").exists()
        else []
    )
    assert not left, f"left in site-packages after the editable install: {left[:10]}"
    where = run(
        [python, "-c", "import minicnn.kernels as k, minicnn; print(minicnn.__file__); print(k.__file__)"],
        work,
    )
    assert where.stdout.split() == [
        str(source / "minicnn" / "__init__.py"),
        str(source / "minicnn" / "kernels" / "__init__.py"),
    ]
    info = run([venv / "bin" / "minicnn", "info", source / "weights" / "mnist_vgg.h5"], work)
    assert "format   minicnn" in info.stdout
