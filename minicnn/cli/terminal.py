"""What the ``minicnn`` command writes to the terminal: text, never control sequences from a file.

Model files and image folders are untrusted, and their strings reach the terminal: layer names and
class names printed by ``info`` and the predictions, file names in warnings, the descriptions of
progress bars. A string that carries ESC (``\\x1b[2J`` clears the screen, ``\\x1b]0;...\\x07`` sets
the window title) or a bidirectional override (U+202E shows text reversed) would be executed by the
terminal rather than shown. The command therefore writes through ``EscapedStream``: every C0 and C1
control character (and DEL) except newline, carriage return and tab, and every bidirectional
embedding, override or isolate, is written as its Python escape (``\\x1b``, ``\\u202e``).

One sequence is let through: tqdm's "cursor up" (``ESC [ A``), which it writes between nested
progress bars and which neither erases nor recolours anything.
"""

from __future__ import annotations

import sys

_KEEP = {"\n", "\r", "\t"}
_CONTROLS = [chr(c) for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))]
_BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)]
ESCAPES = str.maketrans({ch: ch.encode("unicode_escape").decode("ascii") for ch in _CONTROLS + _BIDI
                         if ch not in _KEEP})  # fmt: skip
CURSOR_UP = "\x1b[A"  # tqdm's move between nested bars


def escaped(text: str) -> str:
    """``text`` with every control character but newline, carriage return and tab escaped, and
    tqdm's cursor-up sequence kept."""
    parts = text.split(CURSOR_UP)
    return CURSOR_UP.join(part.translate(ESCAPES) for part in parts)


class EscapedStream:
    """A text stream that writes ``escaped(text)`` to ``stream``; everything else (flush, isatty,
    encoding, fileno) is the wrapped stream's."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(escaped(text))
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def escape_terminal_output() -> None:
    """Wrap sys.stdout and sys.stderr (the command's own process; a library import never calls this)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, EscapedStream):
            setattr(sys, name, EscapedStream(stream))
