"""README's equivalence block is what `minicnn equivalence --float64` prints on the shipped model now."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NUMBER = re.compile(r"-?\d[\d,]*\.?\d*(?:e[-+]\d+)?%?")


def readme_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## The equivalence suite, measured") :]
    return re.search(r"```\n(.*?)```", section, re.S).group(1)


def fresh_block(tmp_path) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TQDM_DISABLE="1")
    cmd = [
        sys.executable,
        "-m",
        "minicnn.cli.main",
        "equivalence",
        "--float64",
        "--json",
        "--out",
        str(tmp_path),
    ]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    tables = json.loads(r.stdout)["tables"]
    simonyan = tables["equivalence"].split("\n\n[")[0]
    return tables["summary"].rstrip("\n") + "\n\n" + simonyan.rstrip("\n") + "\n"


def value(token: str) -> float:
    return float(token.replace(",", "").rstrip("%"))


def same_number(a: str, b: str) -> bool:
    """Counts agree exactly; percentages and gaps above rounding to 1e-3; gaps at rounding level (below 1e-9:
    float64 sums in another order on another machine) only need to stay there."""
    x, y = value(a), value(b)
    if not any(c in a + b for c in ".e"):  # counts: exact
        return x == y
    if abs(x) < 1e-9 and abs(y) < 1e-9:
        return True
    slack = 0.0 if "e" in a + b else 5e-5  # a printed 0.3714 or 40.1% may round the other way
    return abs(x - y) <= 1e-3 * max(abs(x), abs(y)) + slack


def test_readme_block_matches_a_fresh_run(tmp_path):
    old, new = readme_block().splitlines(), fresh_block(tmp_path).splitlines()
    assert len(old) == len(new), "\n".join(new)
    for a, b in zip(old, new):
        assert NUMBER.sub("#", a) == NUMBER.sub("#", b), (a, b)  # the words, names and layout
        for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)):
            assert same_number(x, y), (a, b)


def test_the_comparison_catches_a_changed_number():
    """same_number is not vacuous: a count off by one, a gap at 2e-6 instead of 4e-16, a cosine
    moved in its second digit all fail."""
    assert not same_number("2,365", "2,366")
    assert not same_number("4.34e-16", "2.00e-06")
    assert not same_number("0.39", "0.41")
    assert same_number("4.34e-16", "3.90e-16") and same_number("40.1%", "40.1%")
