"""Property test: conv backward is the adjoint of conv forward, <conv(x), y> = <x, conv^T(y)>."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from support import assert_close

from minicnn.layers.conv import conv2d_backward, conv2d_forward


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3), c=st.integers(1, 4), o=st.integers(1, 4), h=st.integers(1, 12),
    w=st.integers(1, 12), kh=st.integers(1, 4), kw=st.integers(1, 4), stride=st.integers(1, 3),
    pad=st.integers(0, 2), seed=st.integers(0, 2**31 - 1), winograd=st.booleans(),
)  # fmt: skip
def test_adjoint_identity(n, c, o, h, w, kh, kw, stride, pad, seed, winograd):
    if h + 2 * pad < kh or w + 2 * pad < kw:
        return
    # Winograd where it applies (3x3, stride 1), else im2col
    algorithm = "winograd" if winograd and (kh, kw, stride) == (3, 3, 1) else "im2col"
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    k = rng.standard_normal((o, c, kh, kw))
    y, cache = conv2d_forward(x, k, np.zeros(o), stride, pad, algorithm)
    g = rng.standard_normal(y.shape)
    dx, _, _ = conv2d_backward(g, cache, k, stride, pad, algorithm=algorithm)
    lhs, rhs = float((y * g).sum()), float((x * dx).sum())
    scale = max(1.0, abs(lhs), float(np.abs(y).sum() * np.abs(g).max()))
    assert_close(lhs, rhs, 1e-10, "<conv(x), g> = <x, conv^T(g)>", scale=scale)
