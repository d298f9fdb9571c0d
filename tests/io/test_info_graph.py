"""``minicnn info`` on a ResNet file draws the graph as an indented list of blocks."""

from __future__ import annotations

import subprocess
import sys

import minicnn as mc
from minicnn.cli import cmd_info


def expected_resnet18_rows():
    """(indent, name, kind, reads) of torchvision's ResNet-18, written from its structure: a stem,
    four stages of two basic blocks, a shortcut conv + BN in the first block of stages 2-4, and
    each sum reading the block's last BN and the shortcut (the block's input or the downsample)."""
    rows = [(0, "conv1", "Conv2D", ""), (0, "bn1", "BatchNorm2D", ""), (0, "relu", "ReLU", ""),
            (0, "maxpool", "MaxPool2D", "")]  # fmt: skip
    previous = "maxpool"
    for stage in range(1, 5):
        rows.append((0, f"layer{stage}", "", ""))
        for j in range(2):
            b = f"layer{stage}.{j}"
            rows.append((1, b, "", ""))
            for name, kind in [("conv1", "Conv2D"), ("bn1", "BatchNorm2D"), ("relu1", "ReLU"),
                               ("conv2", "Conv2D"), ("bn2", "BatchNorm2D")]:  # fmt: skip
                rows.append((2, f"{b}.{name}", kind, ""))
            shortcut = previous
            if stage > 1 and j == 0:
                rows.append((2, f"{b}.downsample", "", ""))
                rows.append((3, f"{b}.downsample.0", "Conv2D", previous))  # a branch starts
                rows.append((3, f"{b}.downsample.1", "BatchNorm2D", ""))
                shortcut = f"{b}.downsample.1"
            rows.append((2, f"{b}.add", "Add", f"{b}.bn2, {shortcut}"))
            rows.append((1, b, "ReLU", ""))
            previous = b
    rows += [(0, "avgpool", "GlobalAvgPool2D", ""), (0, "fc", "Dense", "")]
    return rows


def parse(line, width):
    """(indent, name, kind, reads) of one table row: names start after the indent and end before
    the name column's width; the reads column is what follows the params column."""
    indent = (len(line) - len(line.lstrip(" "))) // 2
    name = line[:width].strip()
    rest = line[width:].split("  ")
    cells = [c.strip() for c in rest if c.strip()]
    return indent, name, cells


def test_info_draws_a_resnet_as_blocks(tmp_path):
    net = mc.resnet18(seed=0, num_classes=10, input_size=64)
    path = mc.save(net, tmp_path / "r18.h5")
    run = subprocess.run(
        [sys.executable, "-m", "minicnn.cli.main", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("layer ") and "reads" in line)
    header = lines[start]
    width = header.index("kind")
    table = lines[start + 1 : lines.index("", start) - 1]  # up to the total row
    assert lines[lines.index("", start) - 1].split()[:2] == ["total", f"{net.num_params():,}"]
    expected = expected_resnet18_rows()
    assert len(table) == len(expected)
    sizes = {1: 16, 2: 8, 3: 4, 4: 2}
    for line, (indent, name, kind, reads) in zip(table, expected):
        got_indent, got_name, cells = parse(line, width)
        assert (got_indent, got_name) == (indent, name), line
        if not kind:  # a block's row: its name only
            assert cells == [], line
            continue
        assert cells[0] == kind, line
        assert (cells[3] if len(cells) > 3 else "") == reads, line
        if name.startswith("layer") and name[5].isdigit():
            stage = int(name[5])
            channels = 64 * 2 ** (stage - 1)
            assert cells[1] == str((channels, sizes[stage], sizes[stage])), line
        if name == "layer3.0.conv2":  # 256 x 256 x 3 x 3 weights and 256 biases
            assert cells[2] == f"{256 * 256 * 9 + 256:,}", line


def test_the_table_without_an_input_size_is_indented_too():
    net = mc.resnet18(seed=0, num_classes=10, input_size=64)
    lines = cmd_info.layer_table(net, None).splitlines()
    expected = expected_resnet18_rows()
    assert len(lines) == len(expected)
    for line, (indent, name, kind, reads) in zip(lines, expected):
        assert line.startswith("  " * indent + name + " ") or line == "  " * indent + name, line
        assert line.split()[1:] == [kind, *reads.split()] if kind else line.split() == [name], line
