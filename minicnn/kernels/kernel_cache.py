"""The transformed kernels a convolution layer keeps between calls, and how it knows they are current.

Winograd convolution (minicnn/kernels/winograd.py, winograd_f4.py) multiplies by U = G w G^T, not by
w: 16 or 36 values per 3x3 kernel (backward multiplies by the same U, transposed). Built on every
call, U would cost a sizeable share of a pass (it reads every weight and writes 16/9 or 4 times as
much; benchmarks/RESULTS.md, "Batch 1"). The weights rarely change between calls (a saliency map, a
reconstruction, a class-model loop: thousands of passes with the same weights), so a layer keeps
its last U for each lowering.

When is a kept U still right? A version counter bumped by every writer would be free to check, but
it trusts every writer: the optimiser, loaders, and any caller who perturbs a weight in place (as a
finite-difference check does, ``w[i] += eps``). One forgotten bump and the engine silently computes
with old weights. So the key is the weights' content: a 64-bit fingerprint of their bytes,

    h(w) = sum_i word_i * m_i   (mod 2^64),   m_i = (2i + 1) * 0x9E3779B97F4A7C15 (odd),

words being the raw float bits. Changing any one weight changes h for certain (d * m_i = 0 mod 2^64
with m_i odd needs d = 0 mod 2^64); several changes cancel only if they happen to sum to 0 mod
2^64, a 2^-64 chance for changes that are not built to do it. Reading the weights once costs a
fraction of building U (which reads them too, and writes more), and no writer needs to cooperate.

How many are kept? Every U a process keeps counts against one limit (``set_kernel_cache_limit``,
bytes). A U is kept if it fits in what is left; once the limit is reached, a layer whose U does not
fit builds it on every call. Nothing kept is evicted for another layer's sake: a pass visits every
layer, forward then backward, so a least-recently-used rule with less room than all layers need
would evict each U just before its next use and keep nothing useful, while first come, first kept
keeps the same layers' U pass after pass. A U leaves when its weights change (the rebuilt one takes
its place), when its layer is dropped (weak references) or on ``clear``. The default limit bounds
the memory a process holds for speed (the trade-off, time against peak memory, is measured in
benchmarks/RESULTS.md, "Kernel cache limit"). ``choose_lowering`` asks ``keeps`` whether a U of a
given size will be kept before choosing a lowering whose cost depends on it.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

import numpy as np

from minicnn.kernels.compiled import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio: odd, and its multiples spread bits
_WORDS = {2: np.uint16, 4: np.uint32, 8: np.uint64}  # item size -> unsigned type of the same size


@njit
def _fingerprint(words):
    """sum_i words[i] * (2i + 1) * _GOLDEN mod 2^64; words: 1-D uint32 or uint64 (the raw float bits).

    One thread: reading is all it does, and one thread already reads at the memory's speed; a second
    thread only adds a hand-off (benchmarks/RESULTS.md, "Figures moved out of minicnn's docstrings").
    """
    total = np.uint64(0)
    for i in range(words.size):
        total += np.uint64(words[i]) * (np.uint64(2 * i + 1) * _GOLDEN)
    return total


def fingerprint(w) -> tuple:
    """A key for the content of w (any shape and dtype): (shape, dtype, 64-bit hash of its bytes)."""
    w = np.ascontiguousarray(w)
    words = w.reshape(-1).view(_WORDS.get(w.dtype.itemsize, np.uint8))
    return w.shape, w.dtype.str, int(_fingerprint(words))


# The default limit on the bytes of transformed kernels a process keeps, over all layers: VGG16's
# first six 3x3 layers (26 MB), which give most of what keeping every layer's (164 MB) saves in a
# saliency pass, and all of ResNet-50's (benchmarks/RESULTS.md, "Kernel cache limit").
DEFAULT_LIMIT_BYTES = 32 << 20

_limit = [DEFAULT_LIMIT_BYTES]
# Every kept U in the process, in the order kept: (id of its KernelTransforms, lowering) ->
# (weak reference to that KernelTransforms, bytes). Weak, so a layer that is dropped frees its U.
_kept_order: OrderedDict = OrderedDict()
_lock = threading.Lock()


def set_kernel_cache_limit(nbytes: int) -> None:
    """Keep at most ``nbytes`` of transformed kernels in this process (all layers together), evicting
    the least recently used now if more are kept. 0 keeps none (every call builds its own U)."""
    if int(nbytes) < 0:
        from minicnn.errors import MinicnnError

        raise MinicnnError(f"the kernel cache limit must be >= 0 bytes, got {nbytes}")
    with _lock:
        _limit[0] = int(nbytes)
        _evict(0)


def kernel_cache_limit() -> int:
    """The limit in bytes (``set_kernel_cache_limit``)."""
    return _limit[0]


def kept_bytes() -> int:
    """Bytes of transformed kernels kept now, over every layer of the process."""
    with _lock:
        return sum(size for owner, size in _kept_order.values() if owner() is not None)


def _used() -> int:
    """Bytes kept by live layers, dropping the entries of layers that are gone (lock held)."""
    total = 0
    for key, (owner, size) in list(_kept_order.items()):
        if owner() is None:
            del _kept_order[key]  # its layer is gone, and its U with it
        else:
            total += size
    return total


def _evict(room: int) -> None:
    """Drop kept U, most recently kept first, until ``room`` more bytes fit under the limit (lock
    held). Called only when the limit is lowered."""
    total = _used()
    for key, (owner, size) in reversed(list(_kept_order.items())):
        if total + room <= _limit[0]:
            break
        del _kept_order[key]
        transforms = owner()
        if transforms is not None:
            transforms._kept.pop(key[1], None)
        total -= size


class KernelTransforms:
    """A layer's transformed kernels, one per lowering, each with the fingerprint of the weights it
    was built from. ``get`` rebuilds on any change to the weights' content.

    Memory: U is (tile + 2)^2 / 9 times the weight's size (16/9 for F(2x2, 3x3), 4 for F(4x4, 3x3));
    all of VGG16's at batch 1 would take ~170 MB, so the process keeps at most
    ``kernel_cache_limit()`` bytes of them (module docstring). Call ``clear`` to free a layer's.
    """

    def __init__(self):
        self._kept: dict[str, tuple[tuple, object]] = {}

    def keeps(self, nbytes: int, lowering: str) -> bool:
        """Whether this layer's U of ``nbytes`` for ``lowering`` is kept between calls: it is kept
        now, or it fits in what is left under the process's limit."""
        with _lock:
            if lowering in self._kept:
                return True
            return _used() + nbytes <= _limit[0]

    def get(self, w, lowering: str, transform):
        """U for kernel w (O, C, 3, 3): the kept one if w's content is unchanged since it was built,
        else transform(w), kept for next time if it fits under the limit (read-only: callers share
        it)."""
        key = fingerprint(w)
        entry = (id(self), lowering)
        with _lock:
            kept = self._kept.get(lowering)
            if kept is not None and kept[0] == key:
                return kept[1]
            self._kept.pop(lowering, None)  # stale: free it before building the new one
            _kept_order.pop(entry, None)
        u = transform(w)
        u.flags.writeable = False
        with _lock:
            if _used() + u.nbytes <= _limit[0]:
                self._kept[lowering] = (key, u)
                _kept_order[entry] = (weakref.ref(self), u.nbytes)
        return u

    def __deepcopy__(self, memo):
        return KernelTransforms()  # a copied layer rebuilds its own (its weights may be changed next)

    def clear(self) -> None:
        """Forget every kept U (frees its memory; the next call rebuilds)."""
        with _lock:
            for lowering in self._kept:
                _kept_order.pop((id(self), lowering), None)
            self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)
