"""The one array-module switch: NumPy on the CPU, CuPy on the GPU.

Every op is written once against ``xp = get_xp(x)`` (or ``net.xp`` for a network); only the kernels
in ``minicnn/kernels`` fork by device (Chainer's ``get_array_module`` idea). CuPy is optional:
importing minicnn on a machine without CUDA works, and asking for the GPU there raises a clear error.
"""

from __future__ import annotations

import os

import numpy as np

from minicnn.errors import MinicnnError, install_hint

_cupy = None
_cupy_error: str | None = None

DEVICES = ("cpu", "gpu")


def cupy_module():
    """Return the ``cupy`` module, or raise MinicnnError saying why the GPU is unavailable."""
    global _cupy, _cupy_error
    if _cupy is None and _cupy_error is None:
        # float32 matrix products stay exact float32 (TF32 off, CuPy's default); MINICNN_TF32=1 opts in
        # to TF32 tensor cores (~10 mantissa bits: results then differ from the CPU by ~1e-3).
        if os.environ.get("MINICNN_TF32") == "1":
            os.environ["CUPY_TF32"] = "1"
        try:
            import cupy

            cupy.cuda.runtime.getDeviceCount()  # raises when there is no driver or device
            _cupy = cupy
        except Exception as exc:  # ImportError, CUDARuntimeError, ...
            _cupy_error = f"{type(exc).__name__}: {exc}"
    if _cupy is None:
        raise MinicnnError(
            f"the GPU backend needs CuPy and a CUDA device ({install_hint('gpu')}); here: {_cupy_error}"
        )
    return _cupy


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        cupy_module()
        return True
    except MinicnnError:
        return False


def get_xp(array):
    """The array module (numpy or cupy) that owns ``array``: the one way to ask "which device?".

    A CuPy array is recognised by its type's module, so the answer is right even before
    ``cupy_module()`` has run once (CuPy is then imported on first sight of one of its arrays).
    """
    if isinstance(array, np.ndarray) or not type(array).__module__.startswith("cupy"):
        return np
    return cupy_module()


def device_of(array) -> str:
    """ "cpu" or "gpu": where ``array`` lives (for messages and for ``to_device``)."""
    return "cpu" if get_xp(array) is np else "gpu"


def module_for(device: str):
    """The array module of ``device`` ("cpu" -> numpy, "gpu" -> cupy, or a clear error)."""
    if device == "cpu":
        return np
    if device == "gpu":
        return cupy_module()
    raise MinicnnError(f"unknown device {device!r}: expected one of {', '.join(DEVICES)}")


def to_device(array, device: str):
    """Copy ``array`` to ``device`` ("cpu" or "gpu"); a no-op when it is already there."""
    xp = module_for(device)
    if xp is np:
        return array.get() if get_xp(array) is not np else np.asarray(array)
    return xp.asarray(array)


def on_device_of(array, like):
    """``array`` copied to the device that holds ``like`` (a no-op when it is already there)."""
    return to_device(array, device_of(like))


def to_numpy(array) -> np.ndarray:
    """A NumPy copy of ``array`` wherever it lives (for saving, rendering and tests)."""
    return to_device(array, "cpu")


def synchronize(xp) -> None:
    """Wait until the device of array module ``xp`` has finished its queued work (for timing:
    GPU kernels run asynchronously; on the CPU every call has finished when it returns)."""
    if xp is not np:
        xp.cuda.Device().synchronize()
