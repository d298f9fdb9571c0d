"""Loading a model file for a command and moving it to --device, with one-line errors."""

from __future__ import annotations

from pathlib import Path

from minicnn.errors import MinicnnError


def load_network(path, device: str = "cpu"):
    """Load a model file with ``mc.load`` and move it to ``device``; any failure becomes one
    MinicnnError naming the file (or the device)."""
    import minicnn as mc

    path = Path(path)
    if not path.is_file():
        raise MinicnnError(f"weights file {path} not found (expected a .h5 model file)")
    try:
        net = mc.load(path)
    except MinicnnError:
        raise
    except Exception as exc:  # h5py/numpy errors from a broken file: never a traceback
        raise MinicnnError(f"{path}: could not load the model ({first_line(exc)})") from None
    return move_network(net, device)


def move_network(net, device: str):
    """``net.to(device)`` ("cpu" or "gpu"); a missing GPU becomes a one-line MinicnnError."""
    if device == "cpu":  # networks are loaded and built on the CPU: nothing to move
        return net
    try:
        net.to(device)
    except MinicnnError:
        raise
    except Exception as exc:  # RuntimeError from minicnn.backend, CUDA errors
        raise MinicnnError(f"--device {device}: {first_line(exc)}") from None
    return net


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
