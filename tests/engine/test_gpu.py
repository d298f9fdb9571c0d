"""The GPU backend (CuPy): the same engine on both devices must agree within 1e-4 of the largest magnitude.

Parity tests skip where there is no CUDA device. The kernel sources are also compiled with nvcc when it
is installed, so a syntax error in a CUDA string is caught on machines without a GPU.
"""

import shutil
import subprocess

import numpy as np
import pytest
from support import assert_close

import minicnn as mc
from minicnn.backend import gpu_available, to_numpy
from minicnn.errors import MinicnnError

needs_gpu = pytest.mark.skipif(not gpu_available(), reason="no CUDA device / CuPy here")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
@pytest.mark.parametrize("ctype", ["float", "double"])
def test_kernel_sources_compile(tmp_path, ctype):
    from minicnn.kernels.gpu import _SOURCES

    for name, template in _SOURCES.items():
        src = tmp_path / f"{name}_{ctype}.cu"
        src.write_text(template.substitute(T=ctype))
        run = subprocess.run(
            ["nvcc", "-ptx", "-arch=sm_80", str(src), "-o", str(tmp_path / f"{name}.ptx")],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, f"{name} ({ctype}) does not compile:\n{run.stderr}"


def test_gpu_request_without_cuda_is_one_clear_error():
    if gpu_available():
        pytest.skip("a GPU is present")
    with pytest.raises(MinicnnError, match="GPU backend needs CuPy"):
        mc.Sequential([mc.ReLU()]).to("gpu")


def both_devices(net, x, mode, dy_seed=0):
    """(output, dx) on the CPU and on the GPU for the same net, input and backward signal."""
    import cupy

    y = net.forward(x)
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(x.dtype)
    dx = net.backward(dy, mode=mode)
    net.to("gpu")
    try:
        yg = net.forward(cupy.asarray(x))
        dxg = net.backward(cupy.asarray(dy), mode=mode)
        yg, dxg = to_numpy(yg), to_numpy(dxg)
    finally:
        net.to("cpu")
    return (y, dx), (yg, dxg)


@needs_gpu
@pytest.mark.parametrize("mode", mc.MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_layer_on_both_devices(mode, dtype):
    net = mc.Sequential(
        [
            mc.Conv2D(3, 8, 3, padding=1), mc.ReLU(), mc.MaxPool2D(2),
            mc.Conv2D(8, 8, 5, stride=2, padding=2), mc.ReLU(), mc.MaxPool2D(3, stride=2),
            mc.Conv2D(8, 8, 3, padding=1), mc.ReLU(), mc.Dropout(0.5),
            mc.GlobalAvgPool2D(), mc.Dense(8, 6), mc.Softmax(),
        ],
        seed=0,
    ).astype(dtype)  # fmt: skip
    x = np.random.default_rng(1).standard_normal((3, 3, 33, 31)).astype(dtype)
    (y, dx), (yg, dxg) = both_devices(net, x, mode)
    assert_close(yg, y, what="forward")
    assert_close(dxg, dx, what=f"backward {mode}")


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_input_gradient_record_on_the_gpu_equals_a_full_one(dtype):
    """keep="input-gradient" on the GPU (sign bits packed and unpacked by CuPy, the ReLU kernel on a
    bool mask, convolutions on stand-in inputs): the same bits as a full GPU record's."""
    import cupy

    net = mc.Sequential(
        [mc.Conv2D(3, 8, 3, padding=1), mc.ReLU(), mc.MaxPool2D(2), mc.Conv2D(8, 8, 3, padding=1),
         mc.ReLU(), mc.GlobalAvgPool2D(), mc.Dense(8, 6)],
        seed=0,
    ).astype(dtype).to("gpu")  # fmt: skip
    x = cupy.asarray(np.random.default_rng(5).standard_normal((3, 3, 17, 15)).astype(dtype))
    dy = cupy.asarray(np.random.default_rng(6).standard_normal((3, 6)).astype(dtype))
    for mode in mc.MODES:
        full = to_numpy(net.run(x).backward(dy, mode=mode))
        slim = to_numpy(net.run(x, keep="input-gradient").backward(dy, mode=mode, release=True))
        assert np.abs(full).max() > 0 and full.tobytes() == slim.tobytes(), mode


@needs_gpu
@pytest.mark.parametrize("mode", mc.MODES)
def test_vgg16_on_both_devices(mode):
    net = mc.vgg16(seed=0)
    x = (np.random.default_rng(2).standard_normal((2, 3, 224, 224)) * 50).astype(np.float32)
    (y, dx), (yg, dxg) = both_devices(net, x, mode)
    assert_close(yg, y, what="VGG16 scores")
    if mode != "gradient":  # see test_against_torch: float32 near-ties make "gradient" a coin flip
        assert_close(dxg, dx, what=f"VGG16 {mode}")


@needs_gpu
def test_vgg16_gradient_float64_on_both_devices():
    net = mc.vgg16(seed=0).astype(np.float64)
    x = np.random.default_rng(3).standard_normal((1, 3, 224, 224)) * 50
    (y, dx), (yg, dxg) = both_devices(net, x, "gradient")
    assert_close(dxg, dx, rtol=1e-9, what="VGG16 gradient float64")


@needs_gpu
def test_parameter_gradients_on_both_devices():
    import cupy

    net = mc.Sequential(
        [mc.Conv2D(2, 4, 3, stride=2, padding=1), mc.ReLU(), mc.Flatten(), mc.Dense(64, 3)], seed=0
    )
    x = np.random.default_rng(4).standard_normal((2, 2, 8, 8)).astype(np.float32)
    net.forward(x)
    net.backward(np.ones((2, 3), np.float32), need_params=True)
    cpu = {k: dict(v) for k, v in net.grads.items()}
    net.to("gpu")
    net.forward(cupy.asarray(x))
    net.backward(cupy.ones((2, 3), np.float32), need_params=True)
    for name, grads in cpu.items():
        for key, value in grads.items():
            assert_close(to_numpy(net.grads[name][key]), value, what=f"{name}.{key}")
