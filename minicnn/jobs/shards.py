"""Fixed shards of image indices, and the one file each shard's result is written to.

A shard is a range [start, stop) of dataset positions; the plan depends only on the dataset's
length and the shard size, never on the number of workers, so every runner computes the same
shards and a re-run finds the same files. A shard's file is an .npz written under a temporary name
and renamed (``io.atomic``): it either holds a whole result or does not exist. Beside the arrays it
holds its provenance (the model file's hash, the job's settings, the shard's range, the fingerprint
of its images (ids, sizes and content hashes), the hash of the whole installed package's code);
``--resume`` reuses a file only when all of it matches the run asking, so a changed model, layer,
k, image, dataset file or line of code is recomputed, never mixed in.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError


@dataclass(frozen=True)
class Shard:
    """Images [start, stop) of a dataset, or items [start, stop) of another list of work."""

    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"{self.start:09d}-{self.stop:09d}"


def plan(n: int, size: int) -> list[Shard]:
    """Cut n items into consecutive shards of ``size`` (the last may be shorter)."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise MinicnnError(f"shard size must be a positive integer, got {size!r}")
    return [Shard(s, min(s + size, n)) for s in range(0, n, size)]


def file_hash(path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (memory stays flat for a 500 MB model)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# The installed package whose code computes every shard result (tests point it at a copy).
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def code_version() -> str:
    """minicnn's version and a hash of every .py file of the installed package (``PACKAGE_ROOT``):
    a result computed by other code (the network, the record, the preprocessing, the tools, ...) is
    not reused, and a worker that runs other code than the client refuses to work (``check_code``).

    Hashed once per process (and package root): the code a process runs is the code it imported,
    so a file edited while it runs does not change what this process computes; a worker process
    started after the edit hashes the new files and refuses the client's tasks.
    """
    return _package_hash(str(PACKAGE_ROOT))


@functools.lru_cache(maxsize=4)
def _package_hash(root: str) -> str:
    from minicnn import __version__

    files = sorted((p.relative_to(root).as_posix(), p) for p in Path(root).rglob("*.py"))
    h = hashlib.sha256()
    for name, path in files:
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{__version__}+{h.hexdigest()[:16]}"


def provenance(job: str, model_sha256: str, shard: Shard, images, **fields) -> dict:
    """What produced a shard's file, compared in full by ``--resume`` (``load_shard``): the job's
    name, the model file's SHA-256, the shard's range, the fingerprint of its images (None where a
    phase reads none), the code version, and the job's own settings (``fields``, JSON values)."""
    return {
        "job": job,
        "model_sha256": model_sha256,
        **fields,
        "shard": [shard.start, shard.stop],
        "images": images,
        "code": code_version(),
    }


def check_code(client_code: str) -> None:
    """Worker: refuse a task from a client whose minicnn code differs from this process's (on a
    cluster, every host must run the same version, or the results would silently differ)."""
    if client_code != code_version():
        raise MinicnnError(
            f"this worker runs minicnn {code_version()} but the client runs {client_code}: install the same "
            "version on every host"
        )


def shard_path(folder, phase: str, shard: Shard) -> Path:
    return Path(folder) / f"{phase}-{shard.name}.npz"


def save_shard(path, arrays: dict, provenance: dict) -> Path:
    """Write one shard's arrays and provenance atomically as ``path`` (.npz)."""
    from minicnn.io.atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload["provenance"] = np.asarray(json.dumps(provenance, sort_keys=True))
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **payload)
    return path


def load_shard(path, provenance: dict) -> tuple[dict | None, str | None]:
    """A finished shard's file, if its provenance equals ``provenance``: (its arrays, None). A file
    that is not reused is work not done, not an error: (None, why), why naming the provenance fields
    that differ (``code``: other minicnn code; ``model_sha256``: another model file; a setting's
    name) or "unreadable" (a damaged file), which ``--resume`` prints; (None, None) when there is no
    file."""
    path = Path(path)
    if not path.is_file():
        return None, None
    wanted = json.loads(json.dumps(provenance, sort_keys=True))
    try:
        with np.load(path) as data:
            found = json.loads(str(data["provenance"]))
            if found == wanted:
                return {k: data[k] for k in data.files if k != "provenance"}, None
    except Exception:
        return None, "unreadable"
    return None, ", ".join(sorted(k for k in found.keys() | wanted.keys() if found.get(k) != wanted.get(k)))
