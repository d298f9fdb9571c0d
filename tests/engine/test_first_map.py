"""The first saliency map on a fresh install compiles only the kernels its lowerings use.

A fresh interpreter with an empty cache folder (XDG_CACHE_HOME, no NUMBA_CACHE_DIR) computes one
saliency map of the shipped digit model and lists every Numba kernel it compiled (Numba's
``stats.cache_misses``: compiled and saved). Its 3x3 layers are small (1.8 million multiply-adds), so
they take im2col (minicnn/kernels/conv.py, WINOGRAD_MIN_WORK) and none of Winograd's transforms is
compiled: those were 11 of the 19 kernels, ~19 s of the first map's ~24 s of CPU. A second process
with the same folder compiles nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json
import numba
import numpy as np
import minicnn as mc
from minicnn.kernels import dense, im2col, kernel_cache, maxpool, relu, threads, winograd, winograd_f4

net = mc.load("mnist_vgg")
x = np.random.default_rng(0).standard_normal((1, *net.input_shape)).astype(np.float32)
mc.saliency(net, x, 1)
modules = {"dense": dense, "im2col": im2col, "kernel_cache": kernel_cache, "maxpool": maxpool,
           "relu": relu, "winograd": winograd, "winograd_f4": winograd_f4}
found = [(f"{m}.{n}", d) for m, mod in modules.items() for n, d in vars(mod).items()
         if isinstance(d, numba.core.registry.CPUDispatcher)]
found += [(f"serial {k.py_func.__name__}", d) for k, d in threads._SERIAL.items()]
print(json.dumps({name: [sum(d.stats.cache_misses.values()), sum(d.stats.cache_hits.values())]
                  for name, d in found if d.signatures}))
"""

EXPECTED = {  # the kernels a small network's saliency map needs, one specialisation each
    "im2col._im2col_cpu",
    "im2col._col2im_cpu",
    "im2col._valid_span",  # called by both
    "dense._rows_product",
}


def _run(cache_home) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
    env["XDG_CACHE_HOME"] = str(cache_home)
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_first_saliency_map_compiles_only_what_it_uses(tmp_path):
    first = _run(tmp_path)
    compiled = {name for name, (misses, _) in first.items() if misses}
    assert all(misses == 1 for misses, _ in first.values()), first  # one specialisation each
    assert EXPECTED <= compiled, first
    # ReLU and max-pooling: the serial or the threaded build (by array size), never both per kernel;
    # and the convolutions' bias-and-ReLU epilogue (saliency's pass fuses ReLUs: minicnn/fusion.py)
    elementwise = compiled - EXPECTED
    assert "relu._add_bias_rectify_cpu" in elementwise, first
    assert len(elementwise) == 5, first
    assert {name.split(".")[0].replace("serial ", "") for name in elementwise} <= {
        "relu", "maxpool", "_relu_forward_cpu", "_relu_backward_cpu", "_maxpool2_forward_cpu",
        "_maxpool2_backward_cpu",
    }, first  # fmt: skip
    assert not any("winograd" in name or "kernel_cache" in name for name in compiled), first
    second = _run(tmp_path)
    assert not any(misses for misses, _ in second.values()), second  # all loaded from the folder
    assert all(hits == 1 for _, hits in second.values()) and len(second) >= len(EXPECTED) + 3, second


TRANSFORMS = r"""
import json
import numpy as np
from numba.core import event
from minicnn.kernels import winograd, winograd_f4

names = []
with event.install_recorder("numba:compile") as rec:
    for module in (winograd, winograd_f4):
        x = np.random.default_rng(0).standard_normal((1, 4, 10, 10)).astype(np.float32)
        u = module.transform_kernel(np.ones((4, 4, 3, 3), np.float32))
        y = module.winograd_conv(x, u, None, 1)  # the threaded transforms
        module.winograd_conv_adjoint(y, u, 1)
        th, tw = module.tile_counts(10, 10)
        v = winograd._buffer(u.shape[0], 4 * th * tw, np.float32)
        module.INPUT.channels(x, 1, th, tw, 0, th, v, 0, 4)  # what gemm.run_parts's threads run
        module.OUTPUT.channels(v, np.empty(0, np.float32), th, tw, 0, th, y, 0, 4)
        module.OUTPUT_GRADIENT.channels(y, th, tw, 0, th, v, 0, 4)
        module.INPUT_GRADIENT.channels(v, 1, th, tw, 0, th, np.zeros_like(x), 0, 4)
for _, ev in rec.buffer:
    if ev.is_start:
        fn = ev.data["dispatcher"].py_func
        names.append(f"{fn.__module__}.{fn.__qualname__}")
print(json.dumps(names))
"""


def test_winograd_transforms_compile_once_without_error_messages(tmp_path):
    """Both Winograd lowerings, forward and input gradient, on Numba's threads and on the calling
    thread, compile each transform's loops once (``*_channels``, which the threaded ``*_tiles``
    calls), and no kernel compiles Numba's string formatting (the shape-mismatch message of a
    slice copy, minicnn/kernels/winograd.py "Loops"): on an empty cache those were two builds of
    every transform and seconds of string code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", TRANSFORMS], capture_output=True, text=True, env=env,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    names = json.loads(done.stdout.strip().splitlines()[-1])
    ours = [name for name in names if name.startswith("minicnn.")]
    for module in ("winograd", "winograd_f4"):
        for transform in ("input", "output", "output_gradient", "input_gradient"):
            for kind in ("tiles", "channels"):
                assert ours.count(f"minicnn.kernels.{module}.{transform}_{kind}") == 1, ours
    assert not any(name.endswith("_serial") for name in ours), ours
    assert not any("unicode" in name or "raise_with_shape" in name for name in names), names
