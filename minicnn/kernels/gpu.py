"""The GPU (CuPy) twins of the Numba kernels in im2col.py and maxpool.py, and a fused ReLU backward.

Kernels are CUDA C source strings, specialised by dtype and compiled once per device and dtype by a
memoised factory (CuPy caches the binaries on disk too). Each kernel gives one thread one output
element and *gathers* its inputs, so no kernel needs atomics and every result is deterministic:
col2im and max-pool backward, which scatter on the CPU, gather here.

NOTE: this module is imported only when an array lives on the GPU (minicnn.backend.get_xp).
"""

from __future__ import annotations

import functools
from string import Template

import numpy as np

from minicnn.backend import cupy_module

_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_THREADS = 256

_SOURCES = {
    # cols (C*kh*kw rows, m columns, row stride ld) <- patches of x (N, C, H, W) for pixels [q0, q0+m)
    "im2col": Template(r"""
extern "C" __global__ void im2col_$T(const $T* x, $T* cols, int c, int h, int w, int kh, int kw,
        int stride, int pad, int ho, int wo, long long q0, long long m, long long ld) {
    long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (idx >= (long long)c * kh * kw * m) return;
    long long j = idx % m;
    int r = (int)(idx / m);
    int ci = r / (kh * kw), ki = (r / kw) % kh, kj = r % kw;
    long long q = q0 + j, p = (long long)ho * wo;
    long long n = q / p;
    int rem = (int)(q % p), oy = rem / wo, ox = rem % wo;
    int iy = oy * stride - pad + ki, ix = ox * stride - pad + kj;
    $T v = 0;
    if (iy >= 0 && iy < h && ix >= 0 && ix < w) v = x[((n * c + ci) * h + iy) * w + ix];
    cols[(long long)r * ld + j] = v;
}"""),
    # dx (N, C, H, W) += the columns of pixels [q0, q0+m) that read each input element (a gather)
    "col2im": Template(r"""
extern "C" __global__ void col2im_$T(const $T* cols, $T* dx, int nimg, int c, int h, int w, int kh,
        int kw, int stride, int pad, int ho, int wo, long long q0, long long m, long long ld) {
    long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (idx >= (long long)nimg * c * h * w) return;
    int ix = (int)(idx % w), iy = (int)((idx / w) % h), ci = (int)((idx / ((long long)w * h)) % c);
    long long n = idx / ((long long)w * h * c), p = (long long)ho * wo;
    $T acc = 0;
    for (int ki = 0; ki < kh; ++ki) {
        int ty = iy + pad - ki;
        if (ty < 0 || ty % stride) continue;
        int oy = ty / stride;
        if (oy >= ho) continue;
        for (int kj = 0; kj < kw; ++kj) {
            int tx = ix + pad - kj;
            if (tx < 0 || tx % stride) continue;
            int ox = tx / stride;
            if (ox >= wo) continue;
            long long j = n * p + (long long)oy * wo + ox - q0;
            if (j >= 0 && j < m) acc += cols[(long long)((ci * kh + ki) * kw + kj) * ld + j];
        }
    }
    dx[idx] += acc;
}"""),
    # y, switches (N, C, Ho, Wo) <- max over each kh x kw window of x; first maximum wins ties
    "maxpool_forward": Template(r"""
extern "C" __global__ void maxpool_forward_$T(const $T* x, $T* y, int* switches, long long total,
        int h, int w, int ho, int wo, int kh, int kw, int stride) {
    long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (idx >= total) return;
    int ox = (int)(idx % wo), oy = (int)((idx / wo) % ho);
    long long nc = idx / ((long long)wo * ho);
    const $T* src = x + nc * h * w + (long long)(oy * stride) * w + ox * stride;
    $T best = src[0];
    int arg = 0;
    for (int ky = 0; ky < kh; ++ky)
        for (int kx = 0; kx < kw; ++kx) {
            $T v = src[ky * w + kx];
            if (v > best) { best = v; arg = ky * kw + kx; }
        }
    y[idx] = best;
    switches[idx] = arg;
}"""),
    # dx (N, C, H, W) <- sum of dy over the outputs whose switch points at each input (a gather)
    "maxpool_backward": Template(r"""
extern "C" __global__ void maxpool_backward_$T(const $T* dy, const int* switches, $T* dx,
        long long total, int h, int w, int ho, int wo, int kh, int kw, int stride) {
    long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (idx >= total) return;
    int ix = (int)(idx % w), iy = (int)((idx / w) % h);
    long long nc = idx / ((long long)w * h);
    int oy0 = iy >= kh ? (iy - kh) / stride + 1 : 0, oy1 = min(iy / stride, ho - 1);
    int ox0 = ix >= kw ? (ix - kw) / stride + 1 : 0, ox1 = min(ix / stride, wo - 1);
    $T acc = 0;
    for (int oy = oy0; oy <= oy1; ++oy)
        for (int ox = ox0; ox <= ox1; ++ox) {
            long long o = nc * ho * wo + (long long)oy * wo + ox;
            if (switches[o] == (iy - oy * stride) * kw + (ix - ox * stride)) acc += dy[o];
        }
    dx[idx] = acc;
}"""),
}


@functools.cache
def _kernel(name: str, dtype: np.dtype, device: int):
    """Compile kernel ``name`` for ``dtype`` on ``device`` once (memoised)."""
    cupy = cupy_module()
    ctype = _CTYPES[np.dtype(dtype)]
    source = _SOURCES[name].substitute(T=ctype)
    return cupy.RawKernel(source, f"{name}_{ctype}")


def _launch(name, dtype, total, args):
    cupy = cupy_module()
    kernel = _kernel(name, np.dtype(dtype), cupy.cuda.Device().id)
    blocks = (int(total) + _THREADS - 1) // _THREADS
    kernel((blocks,), (_THREADS,), args)


def _contiguous_rows(a):
    """Row stride (in elements) of a 2-D array whose rows are contiguous (a column slice is fine)."""
    if a.strides[1] != a.itemsize:
        raise ValueError("GPU kernels need rows with unit stride")
    return a.strides[0] // a.itemsize


def im2col(x, kh, kw, stride, pad, ho, wo, q0, q1, out):
    """GPU twin of minicnn.kernels.im2col._im2col_cpu (same arguments and result)."""
    n, c, h, w = x.shape
    m = q1 - q0
    i32, i64 = np.int32, np.int64
    args = (x, out, i32(c), i32(h), i32(w), i32(kh), i32(kw), i32(stride), i32(pad), i32(ho), i32(wo),
            i64(q0), i64(m), i64(_contiguous_rows(out)))  # fmt: skip
    _launch("im2col", x.dtype, c * kh * kw * m, args)


def col2im(cols, kh, kw, stride, pad, ho, wo, q0, q1, dx):
    """GPU twin of minicnn.kernels.im2col._col2im_cpu: dx += the adjoint of im2col."""
    n, c, h, w = dx.shape
    i32, i64 = np.int32, np.int64
    args = (cols, dx, i32(n), i32(c), i32(h), i32(w), i32(kh), i32(kw), i32(stride), i32(pad), i32(ho),
            i32(wo), i64(q0), i64(q1 - q0), i64(_contiguous_rows(cols)))  # fmt: skip
    _launch("col2im", dx.dtype, dx.size, args)


def maxpool_forward(x, kh, kw, stride, y, switches):
    """GPU twin of minicnn.kernels.maxpool._maxpool_forward_cpu."""
    h, w = x.shape[2:]
    ho, wo = y.shape[2:]
    i32 = np.int32
    args = (x, y, switches, np.int64(y.size), i32(h), i32(w), i32(ho), i32(wo), i32(kh), i32(kw), i32(stride))
    _launch("maxpool_forward", x.dtype, y.size, args)


def maxpool_backward(dy, switches, kh, kw, stride, dx):
    """GPU twin of minicnn.kernels.maxpool._maxpool_backward_cpu."""
    h, w = dx.shape[2:]
    ho, wo = dy.shape[2:]
    i32 = np.int32
    args = (dy, switches, dx, np.int64(dx.size), i32(h), i32(w), i32(ho), i32(wo), i32(kh), i32(kw),
            i32(stride))  # fmt: skip
    _launch("maxpool_backward", dy.dtype, dx.size, args)


@functools.cache
def _relu_backward_kernel(mask_forward: bool, rectify: bool):
    cupy = cupy_module()
    keep = " && ".join(["y > 0"] * mask_forward + ["dy > 0"] * rectify) or "true"
    name = "relu_backward" + "_mask_forward" * mask_forward + "_rectify" * rectify
    # y of its own type Y: the forward output (T) or its mask y > 0 (bool)
    return cupy.ElementwiseKernel("T dy, Y y", "T dx", f"dx = ({keep}) ? dy : (T)0", name)


def relu_backward(dy, y, mask_forward: bool, rectify: bool):
    """GPU twin of minicnn.kernels.relu.relu_backward: dy where the chosen masks keep it, else 0;
    y the forward output or its mask (bool)."""
    return _relu_backward_kernel(bool(mask_forward), bool(rectify))(dy, y)
