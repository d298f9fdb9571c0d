"""Random generators from any integer seed, negative and huge ones included.

NumPy's ``default_rng(seed)`` (a PCG64 seeded through ``SeedSequence``, O'Neill 2014) refuses a
negative integer. A seed is a name for a stream of random numbers, and every int names one here:

    seed >= 0   exactly ``np.random.default_rng(seed)`` (the same numbers as before, so results
                recorded with non-negative seeds are unchanged; any size, NumPy takes big ints)
    seed < 0    ``SeedSequence(-seed, spawn_key=(NEGATIVE_KEY,))``: the magnitude as entropy and a
                spawn key that no non-negative seed has, so -5 and 5 name different streams
    None        fresh entropy from the operating system (NumPy's own default)

A bool, a float or a string is refused with a MinicnnError: ``seed=0.5`` is a bug, not a seed.
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError

NEGATIVE_KEY = 0x5EED  # the spawn key that marks a negative seed


def make_rng(seed) -> np.random.Generator:
    """A NumPy Generator for ``seed`` (any int, or None; see the module docstring)."""
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise MinicnnError(f"seed must be an integer, got {seed!r}")
    seed = int(seed)
    if seed >= 0:
        return np.random.default_rng(seed)
    return np.random.default_rng(np.random.SeedSequence(-seed, spawn_key=(NEGATIVE_KEY,)))
