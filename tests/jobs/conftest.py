"""Fixtures of the job tests: the 500 shipped held-out digits written out as PNG files (in one
folder per class, so the dataset is read recursively), and the in-process top-9 every runner must equal."""

from __future__ import annotations

import numpy as np
import pytest
from jobs_support import run_topk

from minicnn.paths import HELDOUT


@pytest.fixture(scope="session")
def digit_folder(tmp_path_factory):
    """(folder, ids): the held-out digits as PNGs in label<d>/ subfolders; ids are the sorted
    relative paths, the order the dataset must use."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("digits")
    with np.load(HELDOUT) as data:
        images, labels = data["images"], data["labels"]
    ids = []
    for i, (img, label) in enumerate(zip(images, labels)):
        (folder / f"label{label}").mkdir(exist_ok=True)
        name = f"label{label}/digit{i:03d}.png"
        Image.fromarray(img).save(folder / name)
        ids.append(name)
    return folder, sorted(ids)


@pytest.fixture(scope="session")
def reference(digit_folder, tmp_path_factory):
    """The in-process run, the one every other runner must equal: its --save-arrays arrays."""
    code, arrays = run_topk(digit_folder[0], tmp_path_factory.mktemp("inprocess"))
    assert code == 0
    return arrays
