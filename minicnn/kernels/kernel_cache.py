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
"""

from __future__ import annotations

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


class KernelTransforms:
    """A layer's transformed kernels, one per lowering, each with the fingerprint of the weights it
    was built from. ``get`` rebuilds on any change to the weights' content.

    Memory: U is (tile + 2)^2 / 9 times the weight's size (16/9 for F(2x2, 3x3), 4 for F(4x4, 3x3));
    for VGG16's convolutions at batch 1 (F(4x4, 3x3) but on the 14x14 layers), ~170 MB. Call
    ``clear`` to free.
    """

    def __init__(self):
        self._kept: dict[str, tuple[tuple, object]] = {}

    def get(self, w, lowering: str, transform):
        """U for kernel w (O, C, 3, 3): the kept one if w's content is unchanged since it was built,
        else transform(w), kept for next time (read-only: callers share it)."""
        key = fingerprint(w)
        kept = self._kept.get(lowering)
        if kept is not None and kept[0] == key:
            return kept[1]
        u = transform(w)
        u.flags.writeable = False
        self._kept[lowering] = (key, u)
        return u

    def __deepcopy__(self, memo):
        return KernelTransforms()  # a copied layer rebuilds its own (its weights may be changed next)

    def clear(self) -> None:
        """Forget every kept U (frees its memory; the next call rebuilds)."""
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)
