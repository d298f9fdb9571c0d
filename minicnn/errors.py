"""One exception type for everything a user can get wrong.

Messages are one line and say what was expected; the CLI prints them without a traceback and exits 2.
It subclasses ValueError so that ``except ValueError`` in user code keeps working.
"""

import reprlib  # already loaded by collections: costs nothing at import


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


def quote(value, limit: int = 80) -> str:
    """``value`` taken from a file, quoted for a one-line message, the one way every reader does it.

    A str (or bytes, decoded with backslash escapes) shows its first ``limit`` characters (then
    "...") with every character that is not printable (newlines, a terminal's escape codes,
    direction overrides) escaped as ``repr`` does, so a file cannot rewrite the user's screen:

    >>> quote("conv1\\x1b[2J" + "x" * 100, 8)
    "'conv1\\\\x1b[2...'"

    Any other value (a tuple, a list, a number) is shown by a bounded repr built from bounded
    pieces (the first characters of each string, the first items of each container, three levels
    deep), never from the whole object, and cut to ``limit`` characters: a file can hold a tuple of
    a million references to one megabyte string, whose full repr would take terabytes.
    """
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value[: limit + 1]).decode("utf-8", "backslashreplace")
    if isinstance(value, str):
        shown = repr(value[:limit])
        return shown[:-1] + "..." + shown[-1] if len(value) > limit else shown
    text = _BoundedRepr(limit).repr(value)
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


class _BoundedRepr(reprlib.Repr):
    """reprlib's bounded repr, with strings and bytes cut before they are escaped, huge ints named by
    their size (they have no decimal form past sys.get_int_max_str_digits) and objects of other
    types named by their type (their own __repr__ is never called)."""

    def __init__(self, limit: int):
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxdict = self.maxset = self.maxfrozenset = 6
        self.maxdeque = self.maxarray = 6
        self.maxstring = self.maxother = self.maxlong = limit + 1
        self.cut = limit + 1

    def repr_str(self, x, level):
        return repr(x[: self.cut])  # repr escapes every non-printable character

    def repr_bytes(self, x, level):
        return repr(bytes(x[: self.cut]))

    def repr_int(self, x, level):
        return repr(x) if x.bit_length() <= 256 else f"<int of {x.bit_length()} bits>"

    def repr_OrderedDict(self, x, level):
        return self.repr_dict(x, level)

    def repr_instance(self, x, level):
        if x is None or isinstance(x, (bool, float, complex)):
            return repr(x)
        return f"<{type(x).__name__}>"
