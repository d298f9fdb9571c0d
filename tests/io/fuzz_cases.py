"""Untrusted inputs for minicnn's readers, shared by tests/io/test_fuzz.py (bounded, CI) and
benchmarks/fuzz_models.py (deeper runs).

Every case is a file plus the outcome that counts as clean:

    error    one MinicnnError whose message is one line and names the file
    exact    the load succeeds and every parameter and ``net.meta`` equal the original, bit for bit
             (a flip that lands in bytes nobody reads)

Anything else is unclean: another exception type, a message over several lines or without the file
name, a load that returns changed weights, a crash (the process dies of a signal) or a hang (no
answer within the time limit). Byte flips are loaded in a worker process (``FlipRunner``), so a
crash or a hang inside libhdf5 costs one worker and is recorded, not fatal; each such case is then
loaded through the command line's guard (minicnn.io.guard.check_in_child), which must turn it into
one error line.
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import select
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

import minicnn as mc
from minicnn.errors import MinicnnError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SKELETON = HERE / "data" / "mnist_vgg_format1_skeleton.h5.gz"
# the reproducers: offsets in the format-1 weights/mnist_vgg.h5 shipped before #16, XOR 0xFF
# (the skeleton keeps that file's first 8 KB of metadata byte for byte; its weights are zeroed)
HANG_OFFSETS = (0xDB0, 0x1130)
SEGFAULT_OFFSETS = (0x351, 0x3D9, 0x421, 0x469)


def small_net(seed: int = 0):
    """A 3-conv, 1-dense network (2.6k parameters) with metadata: the file under the byte flips."""
    net = mc.Sequential(
        [
            mc.Conv2D(1, 4, 3, padding=1, name="conv_a"),
            mc.ReLU(name="relu_a"),
            mc.MaxPool2D(2, name="pool_a"),
            mc.Conv2D(4, 8, 3, padding=1, name="conv_b"),
            mc.ReLU(name="relu_b"),
            mc.GlobalAvgPool2D(name="gap"),
            mc.Dense(8, 3, name="scores"),
        ],
        seed=seed,
        meta={"input_shape": [1, 8, 8], "class_names": ["a", "b", "c"], "preprocess": "unit"},
    )
    return net


def format1_skeleton(path: Path) -> Path:
    """Write the format-1 skeleton of the old shipped model to ``path``."""
    path.write_bytes(gzip.decompress(SKELETON.read_bytes()))
    return path


def flipped(src: bytes, offset: int, xor: int) -> bytes:
    b = bytearray(src)
    b[offset] ^= xor
    return bytes(b)


def outcome(path: Path, reference=None) -> tuple[str, str]:
    """("clean" | "unclean", reason) for ``mc.load(path)`` in this process.

    reference: {"params": {name: bytes}, "meta": dict} of the undamaged file; a load that succeeds
    is clean only when it matches (None: any successful load is unclean, the file is bad).
    """
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = mc.load(path)
    except MinicnnError as exc:
        text = str(exc)
        if "\n" in text:
            return "unclean", f"multi-line message: {text[:120]!r}"
        if str(path) not in text:
            return "unclean", f"message does not name the file: {text[:120]!r}"
        return "clean", "error: " + text[len(str(path)) + 2 :][:200]
    except BaseException as exc:  # noqa: BLE001 - the point is to see everything that escapes
        return "unclean", f"{type(exc).__name__} escaped: {str(exc)[:100]!r}"
    if reference is None:
        return "unclean", "loaded a file that should have been refused"
    params = {f"{la.name}/{k}": np.asarray(v).tobytes() for la, k, v in net.parameters()}
    if params != reference["params"]:
        return "unclean", "loaded with changed weights"
    if json.loads(json.dumps(net.meta)) != reference["meta"]:
        return "unclean", "loaded with changed metadata"
    return "clean", "exact"


def reference_of(path: Path) -> dict:
    net = mc.load(path)
    return {
        "params": {f"{la.name}/{k}": np.asarray(v).tobytes() for la, k, v in net.parameters()},
        "meta": json.loads(json.dumps(net.meta)),
    }


_WORKER = r"""
import json, pickle, sys
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
from pathlib import Path
import fuzz_cases
reference = pickle.load(open(sys.argv[3], "rb"))
for line in sys.stdin:
    status, reason = fuzz_cases.outcome(Path(line.strip()), reference)
    sys.stdout.write(json.dumps([status, reason]) + "\n")
    sys.stdout.flush()
"""


class FlipRunner:
    """Loads files one by one in a worker process; a crash or a hang is a result, not the end."""

    def __init__(self, reference: dict, workdir: Path, timeout: float = 10.0):
        import pickle

        self.timeout = timeout
        self.ref_path = workdir / "reference.pkl"
        self.ref_path.write_bytes(pickle.dumps(reference))
        self.proc = None

    def _start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(ROOT), str(HERE), str(self.ref_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip

    def run(self, path: Path) -> tuple[str, str]:
        """(status, reason), with status "clean", "unclean", "crash" or "hang"."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        if ready:
            line = self.proc.stdout.readline()
            if line:
                return tuple(json.loads(line))
            code = self.proc.wait()
            return "crash", f"worker died (exit {code})"
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        return "hang", f"no answer within {self.timeout:g} s"

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


def guarded_outcome(path: Path, timeout: float = 5.0) -> tuple[str, str]:
    """The command line's view: ``check_in_child`` then (if it passes) the load itself."""
    from minicnn.io.guard import check_in_child

    try:
        check_in_child(path, timeout=timeout)
    except MinicnnError as exc:
        text = str(exc)
        if "\n" in text or str(path) not in text:
            return "unclean", f"guard message not one line naming the file: {text[:120]!r}"
        return "clean", "guard: " + text[len(str(path)) + 2 :][:80]
    return "unclean", "passed the guard but crashed or hung when loaded"


def flip_cases(src: bytes, count: int, seed: int, limit: int | None = None) -> list[tuple[int, int]]:
    """``count`` (offset, xor) pairs over the file (its first ``limit`` bytes when given), seeded;
    offsets distinct when possible."""
    rng = np.random.default_rng(seed)
    n = len(src) if limit is None else min(limit, len(src))
    offsets = rng.choice(n, size=min(count, n), replace=False) if count <= n else rng.integers(0, n, count)
    return [(int(o), int(rng.integers(1, 256))) for o in offsets]


def run_flips(
    src_path: Path, count: int, seed: int, workdir: Path, timeout: float = 10.0, limit: int | None = None
) -> dict:
    """Flip ``count`` seeded bytes of ``src_path`` (of its first ``limit`` bytes) one at a time;
    {"tried", "clean", "exact", "unclean": [(offset, xor, reason)], "crash_or_hang_guarded": [...]}."""
    src = src_path.read_bytes()
    reference = reference_of(src_path)
    runner = FlipRunner(reference, workdir, timeout=timeout)
    result = {"tried": 0, "clean": 0, "exact": 0, "unclean": [], "crash_or_hang_guarded": []}
    result["reasons"] = collections.Counter()
    target = workdir / "flipped.h5"
    try:
        # the control: the worker loads the undamaged file as the exact original, so that an error
        # on every flip cannot come from a broken worker
        target.write_bytes(src)
        control = runner.run(target)
        if control != ("clean", "exact"):
            raise RuntimeError(f"the undamaged file does not load as the original in the worker: {control}")
        for offset, xor in flip_cases(src, count, seed, limit):
            target.write_bytes(flipped(src, offset, xor))
            status, reason = runner.run(target)
            result["tried"] += 1
            if status in ("crash", "hang"):
                g_status, g_reason = guarded_outcome(target)
                result["crash_or_hang_guarded"].append((offset, xor, status, g_reason))
                status, reason = g_status, f"{status} in-process; {g_reason}"
            if status == "clean":
                result["clean"] += 1
                result["exact"] += reason == "exact"
                result["reasons"][_kind(reason)] += 1
            else:
                result["unclean"].append((offset, xor, reason))
    finally:
        runner.close()
    return result


def _kind(reason: str) -> str:
    """A short label for an outcome, for counting: "exact", or the error without names and numbers."""
    import re

    text = re.sub(r"'[^']*'|\([^)]*\)|\d+", "_", reason)
    return text[:60]


# -- crafted HDF5 files: one per class of the issue ---------------------------------------------------
def _replace(f, name, **kwargs):
    del f[name]
    f.create_dataset(name, **kwargs)


def _meta_edit(path: Path, **changes):
    """Re-save a valid format-2 file whose net.meta has ``changes`` (checksums consistent)."""
    net = mc.load(path)
    net.meta.update(changes)
    mc.save(net, path)


def crafted_cases(base: Path, workdir: Path) -> dict:
    """{name: path} of crafted bad files derived from the valid small model ``base`` (format 2)."""
    import shutil

    workdir.mkdir(parents=True, exist_ok=True)
    secret = workdir / "secret.bin"
    secret.write_bytes(np.arange(64, dtype=np.float32).tobytes())
    other = workdir / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.ones(3, np.float32)
    bias = "params/scores/bias"
    conv_b = "params/conv_b/weight"

    def relink(link):
        return lambda f: (f.__delitem__(bias), f.__setitem__(bias, link))

    def retype(data):
        return lambda f: _replace(f, bias, data=data)

    edits = {
        "external-storage": lambda f: _replace(
            f, bias, shape=(3,), dtype="f4", external=[(str(secret), 0, 12)]
        ),
        "external-link": relink(h5py.ExternalLink(str(other), "/x")),
        "soft-link": relink(h5py.SoftLink("/params/conv_a/bias")),
        "virtual-dataset": lambda f: _virtual(f, bias, str(workdir / "missing.h5")),
        "plugin-filter": lambda f: _replace(f, bias, data=np.zeros(3, "f4"), compression="lzf"),
        "declared-37GB": lambda f: _replace(
            f, conv_b, shape=(100_000, 100_000), dtype="f4", chunks=(100, 100)
        ),
        "bomb-outside-architecture": lambda f: f.create_dataset(
            "junk", shape=(10**15,), dtype="u1", chunks=(4096,)
        ),
        "dtype-int8": retype(np.ones(3, "i1")),
        "dtype-bool": retype(np.ones(3, bool)),
        "dtype-bytes": retype(np.array([b"a", b"b", b"c"], "S10")),
        "dtype-object": retype(np.array(["a", "b", "c"], dtype=h5py.string_dtype())),
        "dtype-float16": retype(np.ones(3, "f2")),
        "dtype-complex64": retype(np.ones(3, "c8")),
        "wrong-shape": retype(np.ones(4, "f4")),
        "bias-is-group": lambda f: (f.__delitem__(bias), f.create_group(bias)),
        "version-99": lambda f: f.attrs.__setitem__("format_version", 99),
        "layers-not-json": lambda f: f.attrs.__setitem__("layers", np.bytes_(b"[{")),
        "deep-json": lambda f: f.attrs.__setitem__("layers", np.bytes_(b"[" * 100_000)),
        "header-checksum": lambda f: f.attrs.__setitem__("header_sha256", np.bytes_(b"0" * 64)),
    }
    cases = {}
    for name, edit in edits.items():
        path = workdir / f"{name}.h5"
        shutil.copy(base, path)
        with h5py.File(path, "a") as f:
            edit(f)
        cases[name] = path
    meta_edits = {
        "class-names-short": {"class_names": ["a"]},
        "class-names-not-list": {"class_names": "abc"},
        "class-names-not-str": {"class_names": [1, 2, 3]},
        "input-shape-huge": {"input_shape": [1, 100_000, 100_000]},
        "input-shape-negative": {"input_shape": [1, -8, 8]},
        "input-shape-too-small": {"input_shape": [1, 1, 1]},
        "preprocess-unknown": {"preprocess": "rot13"},
    }
    for name, change in meta_edits.items():
        path = workdir / f"{name}.h5"
        shutil.copy(base, path)
        _meta_edit(path, **change)
        cases[name] = path
    for name, value in (("nan-weight", np.nan), ("inf-weight", np.inf)):
        net = mc.load(base)
        net["conv_b"].weight[0, 0, 0, 0] = value
        cases[name] = mc.save(net, workdir / f"{name}.h5")
    cases["keras-layers-bomb"] = _keras_layers_bomb(workdir / "keras-layers-bomb.h5")
    cases["keras-int8-kernel"] = _keras3_weights(workdir / "keras-int8.h5", np.int8)
    cases["keras-declared-37GB"] = _keras3_weights(workdir / "keras-37GB.h5", np.float32, huge=True)
    cases["not-hdf5"] = workdir / "not-hdf5.h5"
    cases["not-hdf5"].write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(100))
    cases["empty"] = workdir / "empty.h5"
    cases["empty"].write_bytes(b"")
    cases["truncated"] = workdir / "truncated.h5"
    cases["truncated"].write_bytes(base.read_bytes()[: len(base.read_bytes()) // 2])
    return cases


def _virtual(f, name, source):
    del f[name]
    layout = h5py.VirtualLayout(shape=(3,), dtype="f4")
    layout[:] = h5py.VirtualSource(source, "x", shape=(3,))
    f.create_virtual_dataset(name, layout, fillvalue=0)


def _keras_layers_bomb(path: Path) -> Path:
    """A Keras-3-looking file whose ``layers`` group holds a 10^15-row dataset (format detection once
    iterated its rows looking for "vars")."""
    with h5py.File(path, "w") as f:
        g = f.create_group("layers")
        g.create_dataset("conv2d", shape=(10**15,), dtype="u1", chunks=(4096,))
    return path


def _keras3_weights(path: Path, dtype, huge: bool = False) -> Path:
    """A Keras 3 ``.weights.h5`` VGG16-notop layout with one bad kernel (dtype or declared size)."""
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    with h5py.File(path, "w") as f:
        cin = 3
        for i, w in enumerate(widths):
            g = f.create_group(f"layers/conv2d_{i}/vars" if i else "layers/conv2d/vars")
            shape = (3, 3, cin, w)
            if i == 0 and huge:
                g.create_dataset("0", shape=(3000, 3000, 3, 1000), dtype="f4", chunks=(1, 1, 3, 1000))
            elif i == 0:
                g.create_dataset("0", data=np.zeros(shape, dtype))
            else:
                g.create_dataset("0", shape=shape, dtype="f4")
            g.create_dataset("1", shape=(w,), dtype="f4")
            cin = w
    return path


# -- other frameworks' files: torch (zip and legacy), safetensors, ONNX --------------------------------
#: format -> seed file in tests/io/data: one tiny torchvision-layout VGG (conv 3->4, BatchNorm, pool,
#: conv 4->8, BatchNorm, pool, classifier 8->8->8->3; 579 parameters), written by torch itself
#: (write_foreign_seeds), so that most flipped bytes land in structure rather than weights
FOREIGN_SEEDS = {
    "torch-zip": "tiny_vgg.pth",
    "torch-legacy": "tiny_vgg_legacy.pth",
    "safetensors": "tiny_vgg.safetensors",
    "onnx": "tiny_vgg.onnx",
}
#: fuzz runs: name -> (format, mutation). "bytes" flips a byte of the seed file; "pickle" flips a
#: byte of the zip's data.pkl and writes the archive again with correct CRC-32s, so that the flip
#: reaches the pickle interpreter and the tensor checks instead of stopping at the checksum
FOREIGN_RUNS = {
    "torch-zip": ("torch-zip", "bytes"),
    "torch-zip data.pkl": ("torch-zip", "pickle"),
    "torch-legacy": ("torch-legacy", "bytes"),
    "safetensors": ("safetensors", "bytes"),
    "onnx": ("onnx", "bytes"),
}
#: a flipped file of a few KB whose load raises the worker's peak memory by more than this is a bomb
FOREIGN_MEMORY_MB = 200


def write_foreign_seeds(folder: Path) -> None:
    """Regenerate the seed files (needs torch; tests/torch_models.py's layouts)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import torch_models as tm

    model = tm.torchvision_vgg(cfg=(4, "M", 8, "M"), bn=True, hidden=8, classes=3, side=1, seed=30)
    for fmt, container in (("torch-zip", "zip"), ("torch-legacy", "legacy"), ("safetensors", "safetensors")):
        tm.save(model, folder / FOREIGN_SEEDS[fmt], container)
    tm.save_onnx(model, folder / FOREIGN_SEEDS["onnx"], 16)


# Reads each path from stdin with the format's reader itself (minicnn.io.foreign.read, not mc.load,
# whose catch-all would hide what escapes a reader); answers [status, message, peak RSS in MB].
# Once the undamaged file (the first) has loaded, its address space is capped a few GB above what
# it uses, so that a bomb ends as a MemoryError here instead of exhausting the machine.
_FOREIGN_WORKER = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from minicnn.errors import MinicnnError
from minicnn.io import foreign
fmt, reference = sys.argv[2], None
for line in sys.stdin:
    try:
        net = foreign.read(line.strip(), fmt)
        params = b"".join(np.asarray(v).tobytes() for _, _, v in net.parameters())
        if reference is None:
            reference = params
            pages = int(open("/proc/self/statm").read().split()[0])
            cap = pages * resource.getpagesize() + (3 << 30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        status, text = ("exact" if params == reference else "changed"), ""
    except MinicnnError as exc:
        text = str(exc)
        one_line = text.isprintable() and len(text) <= 500
        status = "error" if one_line else "bad-message"
    except BaseException as exc:
        status, text = "escaped", f"{type(exc).__name__}: {str(exc)[:150]}"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write(json.dumps([status, text[:300], rss]) + "\n")
    sys.stdout.flush()
"""


def _rezipped(src: bytes, offset: int, xor: int) -> bytes:
    """The zip archive ``src`` with byte ``offset`` of its data.pkl flipped, its CRC-32s correct."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(src)) as z, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as w:
        for info in z.infolist():
            data = z.read(info)
            w.writestr(info, flipped(data, offset, xor) if info.filename.endswith("/data.pkl") else data)
    return out.getvalue()


def _pickle_of(src: bytes) -> bytes:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(src)) as z:
        return z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))


def run_foreign_flips(run: str, count: int, seed: int, workdir: Path, timeout: float = 10.0) -> dict:
    """Flip ``count`` seeded bytes as FOREIGN_RUNS[run] says, one file at a time, each loaded by
    the format's reader in a worker process. Returns {"tried", "error", "exact", "changed", "unclean":
    [(offset, xor, status, text)], "reasons": Counter, "peak_mb"}.

    Clean: one printable MinicnnError line (at most 500 characters), or a load (the exact
    original, or changed weights: none of these formats checks its weight bytes, torch.load does
    not check a zip's storage CRC-32s, so a flip there is undetectable by design; the zip's
    data.pkl is checked by its CRC-32). Unclean: any other exception, a multi-line or unprintable
    message, a crash, a hang (``timeout``), a peak memory FOREIGN_MEMORY_MB above the undamaged
    load's.
    """
    fmt, mutation = FOREIGN_RUNS[run]
    src_path = HERE / "data" / FOREIGN_SEEDS[fmt]
    src = src_path.read_bytes()
    flipped_file = flipped if mutation == "bytes" else lambda _, offset, xor: _rezipped(src, offset, xor)
    flip_over = src if mutation == "bytes" else _pickle_of(src)
    target = workdir / f"flipped-{src_path.name}"
    result = {"tried": 0, "error": 0, "exact": 0, "changed": 0, "unclean": [], "peak_mb": 0.0}
    result["reasons"] = collections.Counter()
    proc, baseline = None, 0.0
    command = [sys.executable, "-c", _FOREIGN_WORKER, str(ROOT), fmt]

    def ask(path):
        proc.stdin.write(f"{path}\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            proc.kill()
            proc.wait()
            return "hang", f"no answer within {timeout:g} s", 0.0
        line = proc.stdout.readline()
        if not line:
            return "crash", f"worker died (exit {proc.wait()})", 0.0
        return tuple(json.loads(line))

    try:
        for offset, xor in flip_cases(flip_over, count, seed):
            if proc is None or proc.poll() is not None:
                # a fresh worker first loads the undamaged file: the control and the memory baseline
                proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)  # fmt: skip
                target.write_bytes(src)
                status, text, baseline = ask(target)
                if status != "exact":
                    raise RuntimeError(f"the undamaged {fmt} file does not load in the worker: {text}")
            target.write_bytes(flipped_file(src, offset, xor))
            status, text, rss = ask(target)
            result["tried"] += 1
            result["peak_mb"] = max(result["peak_mb"], rss)
            if status in ("error", "exact", "changed") and rss - baseline > FOREIGN_MEMORY_MB:
                status, text = "memory", f"peak memory rose {rss - baseline:.0f} MB ({status})"
                proc.kill()  # the peak never falls again: the next case needs a fresh baseline
                proc.wait()
            if status in ("error", "exact", "changed"):
                result[status] += 1
                result["reasons"][_kind(text) if status == "error" else status] += 1
            else:
                result["unclean"].append((offset, xor, status, text))
    finally:
        if proc is not None and proc.poll() is None:
            proc.stdin.close()
            proc.wait(timeout=10)
    return result
