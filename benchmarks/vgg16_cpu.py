"""VGG16 224x224 on the CPU, minicnn against PyTorch, timed two ways.

Workloads: forward, and saliency (forward + input gradient of one class score, no weight gradients),
at batch 1 and 8. Each engine runs the passes its users run for these results: minicnn's
``net.run(x, keep="output")`` for scores (no caches, ReLUs computed inside the convolutions) against
PyTorch under ``torch.inference_mode()``, and saliency as ``minicnn.saliency`` runs it
(``keep="caches"``, ``backward(dy, release=True)``). ``--keep-all`` times the passes of earlier
tables: ``net.forward`` / ``net.backward`` (every output kept), PyTorch under ``torch.no_grad()``.
Reports medians with their spread (min-max), the minicnn / PyTorch ratio of the
medians, and GFLOP/s beside the sgemm GFLOP/s measured in the same run. Both use every core
(torch.set_num_threads(os.cpu_count())).

Methods (--method):
  alternate  both engines in one process, A, B, A, B, ... after a warm-up (what earlier tables used).
             They share one allocator and one set of thread pools, and PyTorch's batch-8 times moved
             50% between such runs.
  separate   each engine in a process of its own (this script run again with --child ENGINE), the
             two kinds of process alternating --rounds times; every process warms up, then times
             each workload --repeats times. No state is shared between the engines.
  both       alternate, then separate (default).

    python benchmarks/vgg16_cpu.py [--batches 1 8] [--repeats 7] [--method both] [--rounds 2] [--quick]

Peers (forward only, in the alternating run, where installed: ``pip install minicnn[bench]``): the
CPU inference engines a user would pick, on the same network exported to ONNX by torch, float32,
THREADS threads, tuned for latency: ONNX Runtime (all graph optimisations, intra-op threads) and
OpenVINO (PERFORMANCE_HINT LATENCY, INFERENCE_PRECISION_HINT f32: its default on CPUs with
bfloat16 units is bfloat16, which is not the float32 computation the others do). --no-peers leaves
them out.

To compare the work each engine does while other jobs share the machine, give both one thread and
time CPU, not wall-clock: NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/vgg16_cpu.py
--threads 1 --cpu-time (minicnn's threads are set by those variables before NumPy loads, PyTorch's by
--threads).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402

import minicnn as mc  # noqa: E402


def workloads(batch: int, net, model, torch):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((batch, 3, 224, 224)) * 50).astype(np.float32)
    target = np.arange(batch) % 1000

    def mc_forward():
        return net.forward(x) if KEEP_ALL else net.run(x, keep="output").output()

    def mc_saliency():
        if KEEP_ALL:
            y = net.forward(x)
        else:
            rec = net.run(x, keep="caches")
            y = rec.output()
        dy = np.zeros_like(y)
        dy[np.arange(batch), target] = 1
        return net.backward(dy) if KEEP_ALL else rec.backward(dy, release=True)

    xt = torch.from_numpy(x)

    def torch_forward():
        with torch.no_grad() if KEEP_ALL else torch.inference_mode():
            return model(xt)

    def torch_saliency():
        xi = xt.clone().requires_grad_(True)
        y = model(xi)
        y[torch.arange(batch), torch.from_numpy(target)].sum().backward()
        return xi.grad

    return {
        "forward": (mc_forward, torch_forward),
        "saliency": (mc_saliency, torch_saliency),
    }


def peer_engines(model, torch, batch: int, folder: str) -> dict:
    """{name: forward callable} for the installed peers (module docstring), on ``model`` exported to
    ONNX by torch; each takes the same float32 input batch as minicnn."""
    x = (np.random.default_rng(0).standard_normal((batch, 3, 224, 224)) * 50).astype(np.float32)
    path = os.path.join(folder, f"vgg16_b{batch}.onnx")
    if not os.path.exists(path):
        import warnings

        with warnings.catch_warnings():  # the TorchScript exporter: no onnxscript needed
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(model, torch.from_numpy(x), path, input_names=["x"], dynamo=False)
    engines = {}
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = THREADS, 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        engines["onnxruntime"] = lambda: session.run(None, {"x": x})
    except ImportError:
        pass
    try:
        import openvino as ov

        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": THREADS,
                  "INFERENCE_PRECISION_HINT": "f32"}  # fmt: skip
        request = ov.Core().compile_model(path, "CPU", config).create_infer_request()
        engines["openvino"] = lambda: request.infer({"x": x})
    except ImportError:
        pass
    return engines


def spread(times) -> str:
    return f"{min(times) * 1e3:.0f}-{max(times) * 1e3:.0f}"


THREADS = os.cpu_count()  # PyTorch's threads (--threads)
CLOCK = time.perf_counter  # or time.process_time (--cpu-time)
KEEP_ALL = False  # the passes of earlier tables (--keep-all)


def child(engine: str, batches, repeats: int) -> None:
    """Time one engine's workloads in this process; print {workload: {batch: [seconds]}} as JSON."""
    import torch
    from torch_mirror import to_torch

    torch.set_num_threads(THREADS)
    net = mc.vgg16(seed=0)
    model = to_torch(net) if engine == "torch" else None  # minicnn's process never builds the mirror
    out = {}
    for batch in batches:
        for name, (mine, theirs) in workloads(batch, net, model, torch).items():
            fn = mine if engine == "minicnn" else theirs
            out.setdefault(name, {})[str(batch)] = harness.alternate({engine: fn}, repeats, clock=CLOCK)[
                engine
            ]
    print(json.dumps(out))


def separate(batches, repeats: int, rounds: int) -> dict:
    """{(workload, batch): {engine: [seconds]}} from ``rounds`` x 2 child processes, alternating."""
    times = {}
    for _ in range(rounds):
        for engine in ("minicnn", "torch"):
            command = [sys.executable, os.path.abspath(__file__), "--child", engine,
                       "--threads", str(THREADS), "--repeats", str(repeats),
                       "--batches", *map(str, batches)]  # fmt: skip
            command += ["--cpu-time"] if CLOCK is time.process_time else []
            command += ["--keep-all"] if KEEP_ALL else []
            result = subprocess.run(command, check=True, capture_output=True, text=True)
            for name, per_batch in json.loads(result.stdout.strip().splitlines()[-1]).items():
                for batch, values in per_batch.items():
                    times.setdefault((name, int(batch)), {}).setdefault(engine, []).extend(values)
    return times


def alternating(batches, repeats: int, peers: bool = True) -> dict:
    """{(workload, batch): {engine: [seconds]}}, both engines (and, for the forward pass, the installed
    peers) in this process, alternating."""
    import tempfile

    import torch
    from torch_mirror import to_torch

    torch.set_num_threads(THREADS)
    net = mc.vgg16(seed=0)
    model = to_torch(net)
    times = {}
    with tempfile.TemporaryDirectory() as folder:
        for batch in batches:
            for name, (mine, theirs) in workloads(batch, net, model, torch).items():
                contenders = {"minicnn": mine, "torch": theirs}
                if name == "forward" and peers:
                    contenders.update(peer_engines(model, torch, batch, folder))
                times[(name, batch)] = harness.alternate(contenders, repeats, clock=CLOCK)
                medians = {k: round(harness.median(v) * 1e3) for k, v in times[(name, batch)].items()}
                print(name, batch, medians, flush=True)
    return times


def peer_report(times: dict) -> str:
    """The forward pass against every peer timed: medians, spread, minicnn / peer."""
    rows = []
    for (name, batch), t in times.items():
        mine = harness.median(t["minicnn"])
        for engine, values in t.items():
            if engine in ("minicnn", "torch"):
                continue
            theirs = harness.median(values)
            rows.append([name, batch, engine, f"{mine * 1e3:.0f}", f"{theirs * 1e3:.0f}", spread(values),
                         f"{mine / theirs:.2f}"])  # fmt: skip
    header = ["workload", "batch", "peer", "minicnn ms", "peer ms", "spread", "minicnn / peer"]
    return harness.table(rows, header) if rows else "(no peer installed: pip install openvino onnxruntime)"


def report(times: dict, flops: float) -> str:
    rows = []
    for (name, batch), t in times.items():
        a, b = harness.median(t["minicnn"]), harness.median(t["torch"])
        work = flops * batch * (2 if name == "saliency" else 1)
        rows.append([name, batch, f"{a * 1e3:.0f}", spread(t["minicnn"]), f"{b * 1e3:.0f}",
                     spread(t["torch"]), f"{a / b:.2f}", f"{work / a / 1e9:.0f}",
                     f"{work / b / 1e9:.0f}"])  # fmt: skip
    return harness.table(rows, ["workload", "batch", "minicnn ms", "spread", "torch ms", "spread", "ratio",
                                "minicnn GFLOP/s", "torch GFLOP/s"])  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--method", choices=["alternate", "separate", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=2, help="separate: processes per engine")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch's threads")
    parser.add_argument("--cpu-time", action="store_true", help="process CPU time, not wall-clock")
    parser.add_argument("--no-peers", action="store_true", help="leave out ONNX Runtime and OpenVINO")
    parser.add_argument("--quick", action="store_true", help="batch 1, 3 repeats, alternating only")
    parser.add_argument(
        "--keep-all", action="store_true", help="earlier tables' passes: every output kept, torch no_grad"
    )
    parser.add_argument("--child", choices=["minicnn", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.repeats, args.method = [1], 3, "alternate"
    global THREADS, CLOCK, KEEP_ALL
    THREADS, CLOCK = args.threads, (time.process_time if args.cpu_time else time.perf_counter)
    KEEP_ALL = args.keep_all
    if args.child:
        return child(args.child, args.batches, args.repeats)

    import torch

    flops = harness.conv_flops(mc.vgg16(seed=0), (3, 224, 224))
    what = "process CPU time" if args.cpu_time else "wall-clock"
    passes = ("net.forward / net.backward (every output kept), torch no_grad" if KEEP_ALL else
              "net.run keep='output' / keep='caches' + release, torch inference_mode")  # fmt: skip
    print(f"machine: {harness.machine()}, torch {torch.__version__} with {THREADS} threads; {what}; "
          f"{passes}; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    peak = harness.sgemm_gflops()
    if args.method in ("alternate", "both"):
        print("\nboth engines in one process, alternating; medians and spread (min-max) in ms")
        times = alternating(args.batches, args.repeats, peers=not args.no_peers)
        print(report(times, flops), flush=True)
        if not args.no_peers:
            print("\nforward against the CPU inference engines (float32, same process, alternating)")
            print(peer_report(times), flush=True)
    if args.method in ("separate", "both"):
        print(f"\neach engine in its own process ({args.rounds} per engine, alternating); medians over "
              f"{args.rounds} x {args.repeats} repeats and spread (min-max) in ms")  # fmt: skip
        print(report(separate(args.batches, args.repeats, args.rounds), flops), flush=True)
    peak = max(peak, harness.sgemm_gflops())
    print(f"\nsgemm (numpy, 2048^3): {peak:.0f} GFLOP/s; a saliency pass counts 2x the forward FLOPs")


if __name__ == "__main__":
    main()
