"""The crop and paste kernels of incremental occlusion against plain NumPy slicing of a padded map."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.kernels.paste import crop, paste


@pytest.mark.parametrize("pad", [0, 1, 2])
def test_crop_is_a_window_of_the_padded_map(pad):
    rng = np.random.default_rng(pad)
    src = rng.standard_normal((1, 3, 9, 11)).astype(np.float32)
    padded = np.pad(src[0], ((0, 0), (pad, pad), (pad, pad)))
    h, w = 4, 5
    # corners: top-left, bottom-right of the padded map, and inside
    r = np.array([0, 9 + 2 * pad - h, 3, 1])
    c = np.array([0, 11 + 2 * pad - w, 2, 6])
    out = crop(src, pad, r, c, h, w)
    assert out.shape == (4, 3, h, w) and out.dtype == np.float32
    for b in range(4):
        np.testing.assert_array_equal(out[b], padded[:, r[b] : r[b] + h, c[b] : c[b] + w])


def test_paste_writes_each_patch_at_its_offset_clipped():
    rng = np.random.default_rng(1)
    dst = rng.standard_normal((3, 2, 6, 7))
    patch = rng.standard_normal((3, 2, 3, 4))
    r, c = np.array([0, -1, 4]), np.array([2, 5, -2])  # inside, over the top-right, over the bottom-left
    expected = dst.copy()
    for b in range(3):
        for i in range(3):
            for j in range(4):
                y, x = r[b] + i, c[b] + j
                if 0 <= y < 6 and 0 <= x < 7:
                    expected[b, :, y, x] = patch[b, :, i, j]
    np.testing.assert_array_equal(paste(dst, patch, r, c), expected)
