"""``mc.load(path)``: open any supported HDF5 model file, detect its format, return a Sequential.

Formats, detected from the file's contents (never from its name):

    "minicnn"             minicnn's own file (minicnn.io.native)
    "keras-model"         a Keras full-model file written by ``model.save("x.h5")``: the
                          architecture is the ``model_config`` JSON attribute (io.keras_model)
    "keras2-weights"      Keras 2 weight-only VGG16/VGG19 files, the layout of the downloadable
                          ``vgg16_weights_tf_dim_ordering_tf_kernels*.h5`` (io.keras_weights)
    "keras3-legacy-weights"  the legacy ``.h5`` layout Keras 3 writes with ``save_weights``
    "keras3-weights"      Keras 3 ``.weights.h5`` files (``layers/<name>/vars/<i>``)

(the weight-only layouts also hold keras.applications ResNet50/101/152, read by io.keras_resnet)

and, before the HDF5 path, other frameworks' files (minicnn.io.foreign: "torch-zip",
"torch-legacy", "safetensors", "onnx").

Every problem (missing file, not HDF5, truncated, unknown layout, shape mismatch, missing layer)
becomes one MinicnnError that starts with the file name; nothing half-built is ever returned.
"""

from __future__ import annotations

from minicnn.errors import MinicnnError, quote
from minicnn.io.source import open_model_file

FORMATS = (
    "minicnn",
    "keras-model",
    "keras2-weights",
    "keras3-legacy-weights",
    "keras3-weights",
)


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
        "model.save, or Keras VGG16/VGG19/ResNet50 weights)"
    )


def _read(f, fmt: str, datasets: dict | None = None):
    if fmt == "minicnn":
        from minicnn.io.native import read_native

        return read_native(f, datasets)
    from minicnn.io.keras_resnet import read_keras_file

    branching = read_keras_file(f, fmt)  # residual networks (a Graph), None for chains
    if branching is not None:
        return branching
    if fmt == "keras-model":
        from minicnn.io.keras_model import read_keras_model

        return read_keras_model(f)
    from minicnn.io.keras_weights import read_keras_weights

    return read_keras_weights(f, fmt)


def _load_foreign(source, fmt: str):
    """The network in a PyTorch, safetensors or ONNX file (minicnn.io.foreign), its metadata checked
    as an HDF5 file's (minicnn.io.metadata). Errors start with the file name."""
    from minicnn.io import foreign
    from minicnn.io.metadata import check_meta

    try:
        net = foreign.read(source.library_path, fmt)
        check_meta(net)  # an ONNX graph declares its input size; every reader sets class names
        return net
    except MinicnnError as exc:
        raise MinicnnError(f"{source.name}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes a reader raise: one line
        text = str(exc).splitlines()[0] if str(exc) else ""
        raise MinicnnError(
            f"{source.name}: cannot read the file, damaged ({type(exc).__name__}: {quote(text, 160)})"
        ) from None


def _load_h5(source):
    """(net, format) for an open HDF5 model file: the structure is checked before anything is read
    (minicnn.io.h5check), the metadata after (minicnn.io.metadata). Every failure is one
    MinicnnError naming the file."""
    from minicnn.io.h5check import check_structure, open_h5
    from minicnn.io.metadata import check_meta

    path = source.name
    with source.reader() as file, open_h5(file, path) as f:
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
            text = str(exc).splitlines()[0] if str(exc) else ""
            reason = f"{type(exc).__name__}: {quote(text, 160)}" if text else type(exc).__name__
            raise MinicnnError(f"{path}: cannot read the file, truncated or corrupt ({reason})") from None
    return net, fmt


def load(path, with_format: bool = False, guard: bool = False):
    """Load a model file into a Sequential on the CPU (float32; a minicnn file keeps its own dtype).

    path: a minicnn file (``mc.save``), a Keras full-model ``.h5``, Keras VGG16/VGG19 weights in any
    of the layouts listed in this module's docstring, a PyTorch, safetensors or ONNX file, or the
    short name of a shipped model (``"mnist_vgg"``, see ``minicnn.paths.SHIPPED``; an existing file
    of that name wins). The format is detected from the contents. Returns the network
    (``net.meta`` carries input_shape, preprocess, class_names, ...), or ``(net, format_name)``
    when ``with_format`` is true.

    The file is opened once (minicnn.io.source) and every step reads that open file: the format
    check, the guard and the reader, so renaming another file onto the path meanwhile changes
    nothing.

    guard: an HDF5 file that is not a shipped model (by SHA-256) is first read whole in a
    short-lived child process with a time limit (minicnn.io.guard), so that a file which makes
    libhdf5 loop forever or crash becomes a MinicnnError within seconds instead of a hang or a dead
    interpreter; costs one Python start-up. The command line does this for every
    model file. A minicnn file of format version 1 loads with a
    ``minicnn.io.native.UncheckedFileWarning``.
    """
    from minicnn import paths
    from minicnn.io import foreign
    from minicnn.io.guard import check_untrusted

    with open_model_file(paths.resolve(path, "model")) as source:
        fmt = foreign.detect(source)
        if fmt is not None:
            # PyTorch, safetensors and ONNX files never reach libhdf5: no child (minicnn.io.guard)
            net = _load_foreign(source, fmt)
        else:
            if guard:
                check_untrusted(source)
            net, fmt = _load_h5(source)
    return (net, fmt) if with_format else net
