"""The usual start of a command: check the options, load the network and the images, run ONE
forward pass and resolve --target. The pass's record travels on to the tools (``record=``), so no
command runs the same forward twice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minicnn.cli.classes import class_names, parse_target, target_entries, target_lines, top5_lines
from minicnn.cli.inputs import DEFAULT_SAMPLES, Inputs, image_files, load_inputs
from minicnn.cli.layer_choice import check_layer
from minicnn.cli.loading import load_network
from minicnn.cli.output import Output, open_output
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError


@dataclass
class Context:
    """What most commands start from.

    net: the network on --device; inputs: the images; record: the PassRecord of the full forward
    pass over ``inputs.x`` (give it to the tools as ``record=``); scores: (N, K) class scores on the
    host; targets: (N,) int64 class per image; out: where the files go (its report is the command's).
    """

    net: object
    inputs: Inputs
    record: object
    scores: np.ndarray
    targets: np.ndarray
    out: Output

    @property
    def report(self) -> Report:
        return self.out.report

    def label(self, i: int) -> str:
        """Short caption for image i: its name and the target class with its index."""
        t = int(self.targets[i])
        return f"{self.inputs.names[i]} -> class {t} ({class_names(self.net)[t]})"

    def stem(self, i: int, tool: str) -> str:
        """File stem of image i's output: image name, tool, target class (distinct per target)."""
        return f"{self.inputs.names[i]}_{tool}_class{int(self.targets[i])}"

    def meta(self, i: int, method: str, **settings) -> dict:
        """The metadata of image i's .npz: model, image, target (index and name), method, settings."""
        t = int(self.targets[i])
        return {
            "model": str(self.report.model),
            "image": self.inputs.names[i],
            "target_index": t,
            "target_name": class_names(self.net)[t],
            "method": method,
            "preprocess": self.net.meta.get("preprocess") or "none",
            **settings,
        }


# work above this many seconds also says which options ask for less
LONG_SECONDS = 60.0


def say_work(report, net, what: str, passes: int, fewer: str, shape=None) -> float | None:
    """State the work before it starts: ``what`` (e.g. "8 units x 1 start x 100 steps") as ``passes``
    forward + backward passes of one image, and the time they take at one pass measured now
    (cli/estimate.py, at ``shape`` (C, H, W), default the network's input); a first run also says
    that it compiled kernels, and work above LONG_SECONDS names the options that ask for less
    (``fewer``). Returns the estimate in seconds (also in the report's numbers), or None when the
    network's input size is unknown (the work is then stated without a time)."""
    from minicnn.cli.estimate import duration, measure_pass

    shape = shape if shape is not None else net.input_shape
    if shape is None:
        report.say(f"  {what} = {passes:,} forward + backward passes of one image")
        return None
    one = measure_pass(net, shape)
    if one.compiled:
        report.say(f"  compiling kernels, first run only ({duration(one.first)})")
    seconds = passes * one.seconds
    report.say(
        f"  {what} = {passes:,} forward + backward passes of one image, about {duration(seconds)} at "
        f"{one.seconds * 1000:.0f} ms a pass (measured)"
        + (f"; {fewer} for less" if seconds > LONG_SECONDS else "")
    )
    report.numbers["estimated seconds"] = seconds
    return seconds


def preprocessing(net, args) -> str:
    """Fix the pixel convention of this run's images in ``net.meta["preprocess"]`` (where input
    loading, display and saved metadata read it): --preprocess when given, else the model file's,
    else "none". Returns one line that says which and why; commands print it, so that raw 0..255
    pixels given to a model trained on another convention are never silent."""
    given, stored = getattr(args, "preprocess", None), net.meta.get("preprocess")
    if given is not None:
        why = "--preprocess" + (f"; the model file says {stored}" if stored and stored != given else "")
    elif stored:
        why = "named by the model file"
    else:
        why = "the model file names none, so raw 0..255 pixels; set --preprocess if it was trained otherwise"
    net.meta["preprocess"] = given or stored or "none"
    return f"preprocessing: {net.meta['preprocess']} ({why})"


def prepare(
    args, command: str, count: int = DEFAULT_SAMPLES, keep_size: bool | str = False, samples: str = "heldout"
) -> Context:
    """Validate the output folder, load the network and the images, run one forward pass,
    resolve --target (printing the class index used) and print the top-5 predictions. Nothing is
    written yet."""
    from minicnn.backend import to_numpy
    from minicnn.tools.targets import resolve_targets

    out = open_output(args, command)
    if getattr(args, "image", None) is not None:
        image_files(args.image)  # a missing image fails before a large model is read
    net = load_network(args.weights, args.device)
    how = preprocessing(net, args)
    target = parse_target(net, getattr(args, "target", "predicted"))
    if getattr(args, "layer", None):
        check_layer(net, args.layer)  # before any work: the error lists the valid names
    inputs = load_inputs(args, net, count=count, keep_size=keep_size, samples=samples)
    if target == "label" and inputs.labels is None:
        raise MinicnnError("--target label needs the shipped samples (their true classes); with --image "
                           "pass a class index or name")  # fmt: skip
    record = net.run(inputs.x)
    scores = to_numpy(record.output())
    if scores.ndim != 2:
        raise MinicnnError(f"{args.weights} does not end in class scores (output shape {scores.shape[1:]})")
    report = out.report
    report.model = str(args.weights)
    report.inputs = list(inputs.names)
    report.say(f"minicnn {command}: {Path(args.weights).name}, {len(inputs.names)} image(s)")
    report.say(f"  {how}")
    report.settings["preprocess"] = net.meta["preprocess"]
    for line in top5_lines(net, scores, inputs.names):
        report.say(line)
    targets = (
        np.asarray(inputs.labels, dtype=np.int64) if target == "label" else resolve_targets(target, scores)
    )
    report.targets = target_entries(net, inputs.names, targets)
    how = {"predicted": "predicted class", "label": "true label"}.get(target, "--target")
    for line in target_lines(report.targets, how):
        report.say(line)
    report.numbers["images"] = len(inputs.names)
    return Context(net, inputs, record, scores, targets, out)
