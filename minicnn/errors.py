"""One exception type for everything a user can get wrong.

Messages are one line and say what was expected; the CLI prints them without a traceback and exits 2.
It subclasses ValueError so that ``except ValueError`` in user code keeps working.
"""


class MinicnnError(ValueError):
    """Bad input: a wrong shape, dtype, name, file or option. The message is one line."""


# The name pip knows this project by. ``import minicnn`` and the ``minicnn`` command keep the short
# name, but "minicnn" on the package index is an unrelated project: a hint that named it would
# install someone else's code.
DISTRIBUTION = "minicnn-vis"

# torch from the package index is the CUDA build (several GB of nvidia packages); the CPU build
# comes from PyTorch's own CPU index, so a hint for torch names it.
TORCH_CPU_INSTALL = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def install_hint(extra: str) -> str:
    """The pip command that adds one of the package's optional extras, e.g. ``install_hint("onnx")``
    -> ``pip install "minicnn-vis[onnx]"`` (pip keeps an installed checkout and adds the extra's
    dependencies; in a checkout ``pip install ".[onnx]"`` does the same)."""
    return f'pip install "{DISTRIBUTION}[{extra}]"'


def quote(text, limit: int = 80) -> str:
    """``text`` taken from a file (str or bytes), quoted for a one-line message: at most ``limit``
    characters (then "..."), and every character that is not printable (newlines, a terminal's escape
    codes, direction overrides) escaped as ``repr`` does, so a file cannot rewrite the user's screen.

    >>> quote("conv1\\x1b[2J" + "x" * 100, 8)
    "'conv1\\\\x1b[2...'"
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    text = str(text)
    shown = repr(text[:limit])
    return shown[:-1] + "..." + shown[-1] if len(text) > limit else shown
