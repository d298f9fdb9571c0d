"""Where minicnn's compiled Numba kernels are kept: a cache folder of the user's, never the package.

``njit`` is ``numba.njit`` with an on-disk cache in

    $XDG_CACHE_HOME/minicnn/numba/<key>   (else ~/.cache/..., %LOCALAPPDATA% on Windows,
                                           ~/Library/Caches on macOS)

where <key> names minicnn's version, the Python version and Numba's version, and below it one folder
per source folder (Numba's own naming: the folder's name and a hash of its path, so two installs of
minicnn never share files).

Why not Numba's default (``cache=True``): it writes into ``__pycache__`` next to the source, that is
into site-packages/minicnn/kernels after ``pip install .``. pip does not know those files, so
``pip uninstall`` (or the upgrade that an editable install does) leaves a site-packages/minicnn
folder holding only them; Python then finds that folder first, imports it as an empty namespace
package and hides the editable install: every minicnn command ends in a traceback.

Why a cache object per kernel, not NUMBA_CACHE_DIR: that variable is read by Numba for every
library in the process, and setting it on import would change the host process for everyone.
Here only minicnn's own dispatchers get the locator (``_UserFolderLocator``); other code keeps
Numba's behaviour. Where the user has set NUMBA_CACHE_DIR (or NUMBA_CACHE_LOCATOR_CLASSES), that
choice wins, as it does for Numba's own cache. The dispatcher's ``_cache`` attribute, which this
replaces, is Numba's private API; Numba's ``enable_caching`` sets it the same way.

A folder that cannot be read or written costs a compilation in every process, nothing else: loading
and saving are skipped, never raised.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numba
from numba.core import caching

from minicnn import __version__


def cache_root() -> Path:
    """The user's cache folder (XDG_CACHE_HOME where set, else the platform's usual place)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg)
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"])
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    return Path.home() / ".cache"


def cache_dir() -> Path:
    """The folder of this minicnn, Python and Numba's compiled kernels (it may not exist yet)."""
    key = f"minicnn-{__version__}-py{sys.version_info[0]}{sys.version_info[1]}-numba-{numba.__version__}"
    return cache_root() / "minicnn" / "numba" / key


class _UserFolderLocator(caching.UserWideCacheLocator):
    """Numba's user-wide locator (the source file's stamp, the function's line) with the folder of
    ``cache_dir``. The folder is made when a kernel is first saved, not when a module is imported."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = str(cache_dir() / self.get_suitable_cache_subpath(py_file))

    @classmethod
    def from_function(cls, py_func, py_file):
        if not os.path.exists(py_file):
            return None
        return cls(py_func, py_file)


class _Impl(caching.CompileResultCacheImpl):
    # The user's NUMBA_CACHE_DIR first (Numba's own rule), else minicnn's folder.
    _locator_classes = [caching.UserProvidedCacheLocator, _UserFolderLocator]


class _KernelCache(caching.FunctionCache):
    """Numba's per-function cache with minicnn's locator. A folder that cannot be read or written
    (module docstring) means compiling, never an error."""

    _impl_class = _Impl

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except OSError:
            return None  # nothing usable there: compile

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except OSError:
            pass  # an unwritable folder: the kernel is compiled again next time, nothing worse


def njit(function=None, **options):
    """``numba.njit(**options)`` whose compiled code is cached in ``cache_dir()`` (module docstring).

    Used as ``@njit`` or ``@njit(parallel=True)``; ``cache`` is not an option here (always on).
    Returns the Numba dispatcher.
    """

    def decorate(fn):
        dispatcher = numba.njit(**options)(fn)
        dispatcher._cache = _KernelCache(dispatcher.py_func)
        return dispatcher

    return decorate(function) if function is not None else decorate


def kernels_compiled() -> bool:
    """True when this minicnn's kernels have been compiled and saved before (by any process), so the
    next run loads them instead of compiling. A hint for messages
    such as "compiling kernels, first run only": a kernel never used before still compiles on its
    first call."""
    folder = Path(numba.config.CACHE_DIR) if numba.config.CACHE_DIR else cache_dir()
    return folder.is_dir() and any(folder.glob("*/*.nbi"))
