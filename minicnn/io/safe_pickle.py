"""A bounded pickle interpreter: the opcodes a state dict needs, nothing run, every size capped.

A pickle is a program for a stack machine (Python's Lib/pickletools.py documents every opcode).
``pickle.Unpickler`` runs it in C, trusting what it reads: a 60-byte pickle can make it allocate a
4 GiB memo (``LONG_BINPUT 0x0FFFFFFF``), and a tuple nested two million deep as a dict key crashes
the process inside C hashing. This interpreter runs the same opcodes in Python with these rules:

    code         GLOBAL / STACK_GLOBAL go through ``find_class`` (the caller's allow-list), REDUCE
                 calls only what ``find_class`` returned, BINPERSID goes through
                 ``persistent_load``; BUILD is accepted only on a dict and its state is dropped
                 (torch's ``_metadata``); NEWOBJ, INST, OBJ, EXT* and every other opcode are refused
    size         at most ``size`` bytes are read, and a length prefix larger than the bytes left is
                 refused before anything is allocated; at most MAX_OPS opcodes run (each makes at
                 most one object), so memory is bounded by a constant times the pickle's size
    memo         a dict keyed by the indices really used, never a table sized by the largest index
    depth        every container's nesting depth is known when it is made, and above MAX_DEPTH it
                 is refused; a list or dict becomes read-only ("sealed") once it is put inside
                 another object, so a depth once checked can never grow behind the checker's back

Protocols 2 to 5 (``torch.save`` writes 2). Every failure is one MinicnnError line with the byte.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from minicnn.errors import MinicnnError, quote

#: the deepest nesting of containers accepted; a state dict needs 5 (dict, _metadata, its entries)
MAX_DEPTH = 64
#: the most opcodes one pickle may run: a state dict needs about 20 per tensor, so this admits
#: 10,000 tensors (minicnn reads VGGs: about 90) and bounds the objects made at about 30 MB
MAX_OPS = 200_000
#: the longest line of a GLOBAL opcode (a module or attribute name)
MAX_NAME = 256

_LENGTHS = {  # opcode -> struct format of its length-prefixed string argument
    b"X": "<I",  # BINUNICODE
    b"\x8c": "<B",  # SHORT_BINUNICODE
    b"\x8d": "<Q",  # BINUNICODE8
    b"T": "<i",  # BINSTRING (Python 2 str)
    b"U": "<B",  # SHORT_BINSTRING
}
_INTS = {b"J": "<i", b"K": "<B", b"M": "<H"}  # BININT, BININT1, BININT2
_PUTS = {b"q": "<B", b"r": "<I"}  # BINPUT, LONG_BINPUT
_GETS = {b"h": "<B", b"j": "<I"}  # BINGET, LONG_BINGET
_CONSTANTS = {b"N": None, b"\x88": True, b"\x89": False}


class _Meta:
    """What the interpreter knows about a container it made: its depth and whether it is sealed.
    Holding ``obj`` keeps it alive, so its id() is not reused while the pickle runs."""

    __slots__ = ("obj", "depth", "sealed")

    def __init__(self, obj, depth: int):
        self.obj, self.depth, self.sealed = obj, depth, False


class BoundedUnpickler:
    """Runs one pickle from ``stream`` (a binary file object at its first opcode), reading at most
    ``size`` bytes. ``find_class(module, name)`` returns the object a GLOBAL names (or raises);
    ``persistent_load(pid)`` returns the object a persistent id names (or raises)."""

    def __init__(self, stream, size: int, find_class: Callable, persistent_load: Callable | None = None):
        self.stream, self.left = stream, size
        self.find_class, self.persistent_load = find_class, persistent_load
        self.pos = 0
        self.stack: list = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}
        self.meta: dict[int, _Meta] = {}  # id(container) -> its depth and seal
        self.callables: dict[int, object] = {}  # id -> what find_class returned (REDUCE may call)

    # -- reading ------------------------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        if n > self.left:
            raise self._error(f"an argument of {n} bytes, only {self.left} left")
        data = self.stream.read(n)
        if len(data) != n:
            raise self._error("the pickle is cut short")
        self.left -= n
        self.pos += n
        return data

    def _unpack(self, fmt: str):
        return struct.unpack(fmt, self._read(struct.calcsize(fmt)))[0]

    def _line(self) -> str:
        chars = bytearray()
        while (c := self._read(1)) != b"\n":
            chars += c
            if len(chars) > MAX_NAME:
                raise self._error(f"a name longer than {MAX_NAME} characters")
        return self._text(bytes(chars))

    def _text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._error(f"a string that is not UTF-8 ({quote(raw, 40)})") from None

    def _error(self, why: str) -> MinicnnError:
        return MinicnnError(f"damaged or unsupported pickle at byte {self.pos}: {why}")

    # -- containers: depth and seals ------------------------------------------------------------
    def _made(self, obj, depth: int):
        if depth > MAX_DEPTH:
            raise self._error(f"containers nested more than {MAX_DEPTH} deep")
        self.meta[id(obj)] = _Meta(obj, depth)
        return obj

    def _use(self, items) -> int:
        """Seal every container in ``items`` (they now sit inside another object); returns the depth
        of the deepest."""
        deepest = 0
        for x in items:
            m = self.meta.get(id(x))
            if m is not None:
                m.sealed = True
                deepest = max(deepest, m.depth)
        return deepest

    def _grow(self, target, kind: type, items) -> None:
        """Check that ``target`` is an open container of ``kind`` that may take ``items``."""
        deepest = self._use(items)
        m = self.meta.get(id(target))
        if not isinstance(target, kind) or m is None:
            raise self._error(f"adds items to a {type(target).__name__}, not a {kind.__name__}")
        if m.sealed:
            raise self._error("changes a container after putting it inside another object")
        m.depth = max(m.depth, deepest + 1)
        if m.depth > MAX_DEPTH:
            raise self._error(f"containers nested more than {MAX_DEPTH} deep")

    def _pop_mark(self) -> list:
        if not self.marks:
            raise self._error("a MARK is missing")
        at = self.marks.pop()
        items = self.stack[at:]
        del self.stack[at:]
        return items

    def _pop(self, n: int = 1) -> list:
        if len(self.stack) - (self.marks[-1] if self.marks else 0) < n:
            raise self._error("the stack is empty")
        items = self.stack[-n:]
        del self.stack[-n:]
        return items

    def _tuple(self, items):
        return self._made(tuple(items), self._use(items) + 1)

    # -- running ----------------------------------------------------------------------------------
    def load(self):
        for _ in range(MAX_OPS):
            op = self._read(1)
            if op == b".":  # STOP
                if len(self.stack) != 1 or self.marks:
                    raise self._error("STOP with other than one object on the stack")
                return self.stack[0]
            self._step(op)
        raise self._error(f"more than {MAX_OPS} opcodes (not a state dict)")

    def _step(self, op: bytes) -> None:  # noqa: C901 - one branch per opcode, as in pickletools
        push = self.stack.append
        if op in _CONSTANTS:
            push(_CONSTANTS[op])
        elif op in _INTS:
            push(self._unpack(_INTS[op]))
        elif op == b"\x8a":  # LONG1: a length byte, then that many little-endian two's-complement bytes
            push(int.from_bytes(self._read(self._unpack("<B")), "little", signed=True))
        elif op == b"G":  # BINFLOAT
            push(self._unpack(">d"))
        elif op in _LENGTHS:
            n = self._unpack(_LENGTHS[op])
            if n < 0:
                raise self._error("a negative string length")
            push(self._text(self._read(n)))
        elif op == b"\x80":  # PROTO
            if not 2 <= self._unpack("<B") <= 5:
                raise self._error("a pickle protocol other than 2 to 5")
        elif op == b"\x95":  # FRAME: a read-ahead hint, its bytes follow as ordinary opcodes
            self._unpack("<Q")
        elif op == b"(":  # MARK
            self.marks.append(len(self.stack))
        elif op == b"0":  # POP
            self._pop()
        elif op == b"1":  # POP_MARK
            self._pop_mark()
        elif op == b")":
            push(self._tuple(()))
        elif op == b"t":
            push(self._tuple(self._pop_mark()))
        elif op in (b"\x85", b"\x86", b"\x87"):  # TUPLE1, TUPLE2, TUPLE3
            push(self._tuple(self._pop(op[0] - 0x84)))
        elif op == b"]":
            push(self._made([], 1))
        elif op == b"}":
            push(self._made({}, 1))
        elif op == b"l":  # LIST
            items = self._pop_mark()
            push(self._made(list(items), self._use(items) + 1))
        elif op == b"d":  # DICT
            items = self._pop_mark()
            d = self._made({}, 1)
            self._setitems(d, items)
            push(d)
        elif op == b"a":  # APPEND
            (x,) = self._pop()
            self._append(x)
        elif op == b"e":  # APPENDS
            for x in self._pop_mark():
                self._append(x)
        elif op == b"s":  # SETITEM
            key, value = self._pop(2)
            self._setitems(self._top(), [key, value])
        elif op == b"u":  # SETITEMS
            items = self._pop_mark()
            self._setitems(self._top(), items)
        elif op in _PUTS:
            self.memo[self._unpack(_PUTS[op])] = self._top()
        elif op == b"\x94":  # MEMOIZE
            self.memo[len(self.memo)] = self._top()
        elif op in _GETS:
            index = self._unpack(_GETS[op])
            if index not in self.memo:
                raise self._error(f"memo entry {index} was never stored")
            push(self.memo[index])
        elif op == b"c":  # GLOBAL
            module = self._line()
            push(self._global(module, self._line()))
        elif op == b"\x93":  # STACK_GLOBAL
            module, name = self._pop(2)
            if not (isinstance(module, str) and isinstance(name, str)):
                raise self._error("STACK_GLOBAL without two names")
            push(self._global(module, name))
        elif op == b"R":  # REDUCE
            func, args = self._pop(2)
            push(self._reduce(func, args))
        elif op == b"b":  # BUILD
            (state,) = self._pop()
            self._use([state])
            target = self._top()
            if not (isinstance(target, dict) and isinstance(state, dict)):
                raise self._error(f"refused: the pickle sets attributes on a {type(target).__name__}")
        elif op == b"Q":  # BINPERSID
            (pid,) = self._pop()
            if self.persistent_load is None:
                raise self._error("a persistent id where none is expected")
            self._use([pid])
            push(self.persistent_load(pid))
        else:
            raise self._error(f"opcode 0x{op[0]:02x} is not one a state dict needs")

    def _top(self):
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise self._error("the stack is empty")
        return self.stack[-1]

    def _append(self, x) -> None:
        target = self._top()
        self._grow(target, list, [x])
        target.append(x)

    def _setitems(self, target, items) -> None:
        if len(items) % 2:
            raise self._error("a key without a value")
        self._grow(target, dict, items)
        for key, value in zip(items[::2], items[1::2]):
            try:
                target[key] = value
            except TypeError:  # an unhashable key
                raise self._error(f"a dict key of type {type(key).__name__}") from None

    def _global(self, module: str, name: str):
        obj = self.find_class(module, name)
        self.callables[id(obj)] = obj
        return obj

    def _reduce(self, func, args):
        if id(func) not in self.callables or not callable(func):
            raise self._error(f"REDUCE calls a {type(func).__name__}, not an allowed function")
        if not isinstance(args, tuple):
            raise self._error("REDUCE without an argument tuple")
        depth = self._use(args)
        try:
            obj = func(*args)
        except TypeError:
            raise self._error(
                f"{getattr(func, '__name__', 'a function')} called with wrong arguments"
            ) from None
        if isinstance(obj, (dict, list)):
            self._made(obj, max(depth, 1))
        return obj


def load(stream, size: int, find_class: Callable, persistent_load: Callable | None = None):
    """The object of the pickle at ``stream``'s position (at most ``size`` bytes read); see
    BoundedUnpickler. The stream is left just after the pickle's STOP."""
    return BoundedUnpickler(stream, size, find_class, persistent_load).load()
