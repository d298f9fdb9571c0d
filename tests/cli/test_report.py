"""Commands return what they made (a Report), in-process: the files are there, the numbers and tables
are the ones printed, the demo builds its page from the reports alone, and a command runs its
forward pass once."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

import minicnn as mc
from minicnn.cli import cmd_demo
from minicnn.cli.cmd_demo import STEPS, command_args
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError


def run_command(name, **options) -> Report:
    run, args = command_args(name, **options)
    return run(args)


def test_saliency_reports_its_files_and_numbers(shipped, tmp_path):
    report = run_command("saliency", out=tmp_path, save_arrays=True)
    assert report.command == "saliency" and report.exit_code == 0
    assert len(report.paths) == 8 and all(p.is_file() for p in report.paths)
    assert sorted(report.paths) == sorted(tmp_path.iterdir())  # every file written, nothing else
    assert len(report.figures) == 4 and set(report.figures.values()) <= set(report.paths)
    assert all(p.suffix == ".png" for p in report.figures.values())
    assert report.numbers["images"] == 4
    for path in report.figures.values():
        name = path.stem.split("_saliency_")[0]  # <image>_saliency_class<c>: one .npz per image beside it
        expected = np.load(path.with_suffix(".npz"))["saliency"].max()
        assert report.numbers[f"{name} saliency max"] == pytest.approx(float(expected))
    assert sum("top-5" in m for m in report.messages) == 4


def test_equivalence_reports_the_table_it_wrote(shipped, tmp_path, capsys):
    report = run_command("equivalence", out=tmp_path)
    table = report.tables["equivalence"]
    assert table == (tmp_path / "equivalence.txt").read_text(encoding="utf-8")
    assert table.strip() in capsys.readouterr().out
    relu = [v for k, v in report.numbers.items() if k.endswith("_relu max rel diff")]
    assert relu and max(relu) > 0  # the ReLU rows differ, as the CSV test checks
    assert (tmp_path / "equivalence.csv") in report.paths


def test_info_reports_the_layers(shipped):
    report = run_command("info", file=shipped.DEFAULT_MODEL)
    net = mc.load(shipped.DEFAULT_MODEL)
    assert report.numbers == {"layers": len(net.layers), "parameters": net.num_params()}
    assert all(name in report.tables["layers"] for name in net.names)


def test_command_args_are_the_declared_defaults_plus_overrides(tmp_path):
    _, args = command_args("occlusion", size=12, out=tmp_path)
    assert (args.size, args.stride, args.fill, args.target, args.out) == (
        12,
        None,  # the default stride is scaled to the image (issue 17)
        "grey",
        "predicted",
        tmp_path,
    )
    assert args.image is None and args.save_arrays is False


@pytest.fixture
def fake_tools(monkeypatch):
    """Every demo step's ``run`` replaced by one that draws a tiny picture and returns a Report; the
    calls are recorded. argparse parsing is forbidden while the demo runs."""
    from minicnn.render.save import save_png

    calls = {}

    def fake(command):
        def run(args):
            calls[command] = args
            if command == "invert":
                raise MinicnnError("no inversion today")
            report = Report(command)
            args.out.mkdir(parents=True)
            for name in ("b10", "b2"):  # written out of natural order
                path = save_png(np.zeros((30, 30, 3), np.uint8), args.out / f"{name}.png")
                report.paths.append(path)
                report.figures[f"caption {name}"] = path
            if command == "equivalence":
                report.tables["equivalence"] = "THE TABLE\n"
                report.tables["rows"] = [{"layer": "x"}]  # rows are data, not shown
            return report

        return run

    import importlib

    for command, *_ in STEPS:
        module = importlib.import_module(f"minicnn.cli.cmd_{command}")
        monkeypatch.setattr(module, "run", fake(command))

    def no_parsing(self, *args, **kwargs):
        raise AssertionError("the demo parsed a command line")

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", no_parsing)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", no_parsing)
    return calls


def test_demo_builds_its_page_from_the_reports(fake_tools, tmp_path):
    out = tmp_path / "demo"
    report = cmd_demo.run(argparse.Namespace(out=out, device="cpu", seed=3))
    assert report.exit_code == 1  # invert failed
    assert list(fake_tools) == [step[0] for step in STEPS]
    occ = fake_tools["occlusion"]
    assert (occ.size, occ.stride, occ.fill, occ.out, occ.seed) == (12, 2, "grey", out / "occlusion", 3)
    text = (out / "index.html").read_text(encoding="utf-8")
    for command, *_ in STEPS:
        if command != "invert":
            assert text.index(f'src="{command}/b2.png"') < text.index(f'src="{command}/b10.png"')
    assert "failed: error: no inversion today" in text and 'src="invert/' not in text
    assert text.count("<pre>") == 1 and "<pre>THE TABLE\n</pre>" in text
    assert "Made by <code>minicnn occlusion --size 12 --stride 2</code>" in text
    assert (out / "index.html") in report.paths and (out / "saliency" / "b2.png") in report.paths


def test_demo_shows_only_this_runs_pictures(fake_tools, monkeypatch, tmp_path):
    out = tmp_path / "demo"
    (out / "cam").mkdir(parents=True)
    (out / "cam" / "a_stale_picture.png").write_bytes(b"from an older run")
    from minicnn.cli import cmd_cam

    def run(args):  # writes into an existing folder, next to the stale file
        from minicnn.render.save import save_png

        path = save_png(np.zeros((30, 30, 3), np.uint8), args.out / "new.png")
        return Report("cam", paths=[path], figures={"new": path})

    monkeypatch.setattr(cmd_cam, "run", run)
    cmd_demo.run(argparse.Namespace(out=out, device="cpu", seed=0))
    text = (out / "index.html").read_text(encoding="utf-8")
    assert 'src="cam/new.png"' in text and "a_stale_picture" not in text


def count_runs(monkeypatch):
    """Wrap Sequential.run to count the forward passes (net.forward goes through it too)."""
    from minicnn.network import Sequential

    calls = []
    original = Sequential.run

    def counted(self, x, *args, **kwargs):
        calls.append(x)
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(Sequential, "run", counted)
    return calls


@pytest.mark.parametrize("command", ["saliency", "reconstruct", "cam", "localize"])
def test_one_forward_pass_serves_prepare_and_the_tool(shipped, monkeypatch, tmp_path, command):
    calls = count_runs(monkeypatch)
    run_command(command, out=tmp_path)
    assert len(calls) == 1, f"{command} ran {len(calls)} forward passes over {[c.shape for c in calls]}"


def test_occlusion_does_not_repeat_the_unoccluded_pass(shipped, monkeypatch, tmp_path):
    """The clean images go through the network once: incremental occlusion (the default) starts every
    image's occluded copies from that pass's activations and runs them layer by layer, not through
    another Sequential.run (it used to run each clean image a second time)."""
    calls = count_runs(monkeypatch)
    run_command("occlusion", out=tmp_path, size=14, stride=14)
    assert len(calls) == 1, f"occlusion ran {len(calls)} passes over {[c.shape for c in calls]}"
