"""What a worker process keeps between its tasks: the network, loaded once and checked against the
model file the client hashed, so that a worker that sees another file under the same path fails
with one line instead of mixing results of two models."""

from __future__ import annotations

from pathlib import Path

from minicnn.errors import MinicnnError

_NETWORKS: dict = {}


def network(weights: str, sha256: str, device: str = "cpu"):
    """The Sequential in ``weights`` (whose sha256 the client computed), on ``device``, cached."""
    key = (str(weights), sha256, device)
    if key not in _NETWORKS:
        import warnings

        from minicnn.io.loader import load
        from minicnn.jobs.shards import file_hash

        path = Path(weights)
        if not path.is_file():
            raise MinicnnError(
                f"model file {path} cannot be read here (workers read it from a path they all see)"
            )
        if file_hash(path) != sha256:
            raise MinicnnError(f"model file {path} here differs from the client's (sha256 mismatch)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the client already printed the file's warnings
            net = load(path)
        if device != "cpu":
            net.to(device)
        _NETWORKS.clear()  # one model per worker at a time: memory stays bounded
        _NETWORKS[key] = net
    return _NETWORKS[key]


def remember(net, weights: str, sha256: str, device: str = "cpu") -> None:
    """Give this process's own loaded network to the cache (the in-process runner reuses it)."""
    _NETWORKS.clear()
    _NETWORKS[(str(weights), sha256, device)] = net
