"""Fixtures of the command-line tests (helpers are in cli_helpers.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def shipped():
    """The shipped models and samples (issue 4); fail clearly when they are missing."""
    from minicnn import paths

    for p in (paths.DEFAULT_MODEL, paths.GAP_MODEL, paths.WEIGHTS_DIR / "mnist_heldout.npz"):
        assert p.is_file(), f"shipped file {p} is missing"
    return paths
