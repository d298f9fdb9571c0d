"""The method x test table (tools/sanity_table.py) and the README's copy of it.

The Markdown against a table written out here; the README's block is exactly what
benchmarks/method_tests.py makes from benchmarks/method_tests.json; a cell of that JSON is
measured again here and agrees.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from minicnn.tools.sanity_table import markdown, protocols, record

ROOT = Path(__file__).resolve().parents[2]


def benchmark():
    spec = importlib.util.spec_from_file_location("method_tests", ROOT / "benchmarks" / "method_tests.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_markdown_of_records():
    records = [
        record("gradient", "cascade", "minicnn", "spearman_fg", 0.18777, "changed"),
        record("guided", "class", "minicnn", "spearman_abs", 0.9, "insensitive"),
        record("gradient", "pointing", "-", "hit rate", 0.534, ""),
        record("guided", "cascade", "minicnn", "spearman_abs", float("nan"), "alike"),
    ]
    assert markdown(records) == (
        "| method | cascade | class | pointing |\n"
        "|---|---|---|---|\n"
        "| Gradient | 0.19 fg changed |  | 53% |\n"
        "| Guided backprop | n/a | 0.90 insensitive |  |"
    )
    assert protocols(records) == ["minicnn"]


def test_readme_holds_the_benchmark_block():
    data = json.loads((ROOT / "benchmarks" / "method_tests.json").read_text())
    block = benchmark().readme_block(data)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert block in readme, "README's sanity table is stale: run python benchmarks/method_tests.py --readme"
    assert readme.count("<!-- method_tests.py: begin -->") == 1
    cells = data["digits"]["cells"]
    assert {c["protocol"] for c in cells} <= {"minicnn", "-"} and data["digits"]["protocol"] == "minicnn"
    assert "protocol **minicnn**" in block
    # the issue's finding: the digits' gradient reads "changed" under every randomisation
    gradient = {c["test"]: c for c in cells if c["method"] == "gradient"}
    assert all(gradient[t]["verdict"] == "changed" for t in ("cascade", "independent", "data"))


def test_a_cell_of_the_benchmark_measured_again(digit_net):
    from minicnn.tools.sanity_suite import run_checks
    from minicnn.tools.sanity_table import cells

    data = json.loads((ROOT / "benchmarks" / "method_tests.json").read_text())
    stored = {(c["method"], c["test"]): c for c in data["digits"]["cells"]}
    x = benchmark().digits(8)
    f = run_checks(digit_net, x, "predicted", ["gradient", "deconvnet"], ["cascade"])
    for c in cells(f):
        s = stored[(c["method"], c["test"])]
        assert (c["protocol"], c["measure"], c["verdict"]) == (s["protocol"], s["measure"], s["verdict"])
        assert c["value"] == pytest.approx(s["value"], abs=2e-3)  # float32 passes, thread counts
    assert np.isfinite([c["value"] for c in cells(f)]).all()
