"""The files minicnn reads, named once for help texts and errors. Every --weights help, ``minicnn
info``'s help and every error that says which model file was expected are built from
``MODEL_FORMATS``, so a new reader (a loader in this folder, detected from the file's contents by
io/loader.py or io/foreign.py) is named everywhere by adding one line here. The suffixes are what
users recognise; detection never reads them. Images: ``image_files``.
"""

from __future__ import annotations

MODEL_FORMATS = (
    "minicnn .h5",
    "Keras .h5 (a full model, or VGG16/VGG19 weights)",
    "PyTorch .pth (torchvision/timm VGG state dict)",
    ".safetensors (torchvision/timm names)",
    "ONNX .onnx",
)


def model_files() -> str:
    """The formats as one phrase for help texts and errors: 'minicnn .h5, Keras .h5 (...), ... or
    ONNX .onnx'."""
    return ", ".join(MODEL_FORMATS[:-1]) + " or " + MODEL_FORMATS[-1]


def image_files() -> str:
    """The image files read from a folder, by suffix (io/image_folder.IMAGE_SUFFIXES; a file named
    on its own is opened by its contents, io/images.FORMATS): '.png, .jpg, ...'."""
    from minicnn.io.image_folder import IMAGE_SUFFIXES

    return ", ".join(IMAGE_SUFFIXES)
