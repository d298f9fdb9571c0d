"""``mc.load(path)``: open any supported HDF5 model file, detect its format, return a Sequential.

Formats, detected from the file's contents (never from its name):

    "minicnn"             minicnn's own file (minicnn.io.native)
    "keras-model"         a Keras full-model file written by ``model.save("x.h5")``: the
                          architecture is the ``model_config`` JSON attribute (io.keras_model)
    "keras2-weights"      Keras 2 weight-only VGG16/VGG19 files, the layout of the downloadable
                          ``vgg16_weights_tf_dim_ordering_tf_kernels*.h5`` (io.keras_weights)
    "keras3-legacy-weights"  the legacy ``.h5`` layout Keras 3 writes with ``save_weights``
    "keras3-weights"      Keras 3 ``.weights.h5`` files (``layers/<name>/vars/<i>``)

and, before the HDF5 path, other frameworks' files (minicnn.io.foreign: "torch-zip",
"torch-legacy", "safetensors", "onnx").

Every problem (missing file, not HDF5, truncated, unknown layout, shape mismatch, missing layer)
becomes one MinicnnError that starts with the file name; nothing half-built is ever returned.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from minicnn.errors import MinicnnError

FORMATS = (
    "minicnn",
    "keras-model",
    "keras2-weights",
    "keras3-legacy-weights",
    "keras3-weights",
)


@contextlib.contextmanager
def open_h5(path):
    """Open ``path`` read-only with h5py; MinicnnError if missing or not a readable HDF5 file."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise MinicnnError(f"{path}: no such file")
    if not path.is_file():
        raise MinicnnError(f"{path}: not a file")
    try:
        if not h5py.is_hdf5(path):
            raise MinicnnError(f"{path}: not an HDF5 file (expected a minicnn or Keras .h5 model)")
        f = h5py.File(path, "r")
    except MinicnnError:
        raise
    except Exception as exc:  # OSError from libhdf5, or worse from a damaged superblock
        reason = _first_line(exc)
        raise MinicnnError(f"{path}: cannot open HDF5 file, truncated or corrupt ({reason})") from None
    try:
        yield f
    finally:
        f.close()


def detect(f) -> str:
    """The format name (one of FORMATS) of the open h5py File ``f``; MinicnnError if none fits."""
    from minicnn.io import keras_weights
    from minicnn.io.h5common import attr_str

    if attr_str(f, "format") == "minicnn":
        return "minicnn"
    if "model_config" in f.attrs:
        return "keras-model"
    layout = keras_weights.detect_layout(f)
    if layout is not None:
        return layout
    raise MinicnnError(
        "HDF5 file of an unknown kind (expected a minicnn model, a Keras model saved with "
        "model.save, or Keras VGG16/VGG19 weights)"
    )


def _read(f, fmt: str, datasets: dict | None = None):
    if fmt == "minicnn":
        from minicnn.io.native import read_native

        return read_native(f, datasets)
    if fmt == "keras-model":
        from minicnn.io.keras_model import read_keras_model

        return read_keras_model(f)
    from minicnn.io.keras_weights import read_keras_weights

    return read_keras_weights(f, fmt)


def _load_foreign(path: Path):
    """(net, format) for a PyTorch, safetensors or ONNX file (minicnn.io.foreign, detected from the
    first bytes), None for anything else (the HDF5 path below); its metadata checked as an HDF5
    file's (minicnn.io.metadata). Errors start with the file name."""
    from minicnn.io import foreign
    from minicnn.io.metadata import check_meta

    fmt = foreign.detect(path)
    if fmt is None:
        return None
    try:
        net = foreign.read(path, fmt)
        check_meta(net)  # an ONNX graph declares its input size; every reader sets class names
        return net, fmt
    except MinicnnError as exc:
        raise MinicnnError(f"{path}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes a reader raise: one line
        text = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise MinicnnError(f"{path}: cannot read the file, damaged ({type(exc).__name__}: {text})") from None


def _first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (h5py's messages can span lines)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _load_h5(path: Path):
    """(net, format) for an HDF5 model file: the structure is checked before anything is read
    (minicnn.io.h5check), the metadata after (minicnn.io.metadata). Every failure is one
    MinicnnError naming the file."""
    from minicnn.io.h5check import check_structure
    from minicnn.io.metadata import check_meta

    with open_h5(path) as f:
        try:
            datasets = check_structure(f)
            fmt = detect(f)
            net = _read(f, fmt, datasets)
            check_meta(net)
        except MinicnnError as exc:
            raise MinicnnError(f"{path}: {str(exc).splitlines()[0]}") from None
        except MemoryError:
            raise MinicnnError(f"{path}: the file asks for more memory than there is (corrupt?)") from None
        except Exception as exc:  # noqa: BLE001 - h5py, json and numpy errors from a damaged file
            # h5py raises OSError, KeyError, ValueError, TypeError, RuntimeError when a dataset's
            # bytes are missing (a truncated download) or a checksum fails; json a RecursionError
            reason = _first_line(exc)
            raise MinicnnError(f"{path}: cannot read the file, truncated or corrupt ({reason})") from None
    return net, fmt


def load(path, with_format: bool = False, guard: bool = False):
    """Load a model file into a Sequential on the CPU (float32; a minicnn file keeps its own dtype).

    path: a minicnn file (``mc.save``), a Keras full-model ``.h5``, or Keras VGG16/VGG19 weights in
    any of the layouts listed in this module's docstring; the format is detected from the contents.
    Returns the network (``net.meta`` carries input_shape, preprocess, class_names, ...), or
    ``(net, format_name)`` when ``with_format`` is true.

    guard: first read the whole file in a short-lived child process with a time limit
    (minicnn.io.guard), so that a file which makes libhdf5 loop forever or crash becomes a
    MinicnnError within seconds instead of a hang or a dead interpreter; costs one Python start-up
    (about 0.3 s). The command line does this for every model file it has not shipped.
    A minicnn file of format version 1 loads with a ``minicnn.io.native.UncheckedFileWarning``.
    """
    path = Path(path)
    # PyTorch, safetensors and ONNX files never reach libhdf5, so the guard (an HDF5 check) is not
    # for them; their readers are pure Python, Rust (safetensors) or protobuf.
    foreign = _load_foreign(path)
    if foreign is not None:
        return foreign if with_format else foreign[0]
    if guard:
        from minicnn.io.guard import check_in_child

        check_in_child(path)
    net, fmt = _load_h5(path)
    return (net, fmt) if with_format else net
