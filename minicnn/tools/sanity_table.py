"""The method x test table of the sanity checks, as records and as Markdown.

Each cell is one record: the method, the test, the protocol of the comparison
(sanity_protocols.py), the measure read, its value and the verdict:

    {"method": "gradient", "test": "cascade", "protocol": "minicnn", "measure": "spearman_fg",
     "value": 0.188, "verdict": "changed"}

``cells`` makes these records from a ``sanity_suite.Findings``; ``markdown`` writes them as a table
(rows: methods, columns: tests), each cell "value verdict", with "fg" where the number is the
correlation over the pixels non-zero in both maps. The README's sanity table and ``minicnn
sanity-study``'s table are this function's output.

Verdicts: cascade, independent, data, smooth-mprt: "changed" (below sanity_suite.CHANGED) or
"alike"; class and random-logit: "sensitive" (changed with the class) or "insensitive";
efficient-mprt: "rises" (the map's entropy grows on the random network) or "falls"; pointing: the
hit rate, no verdict.

Another test joins the table by its name in COLUMNS (the column order) and its cells as ``record``
dicts appended to the list ``markdown`` is given; nothing else here needs to know it.
"""

from __future__ import annotations

import numpy as np

from minicnn.tools.sanity_methods import METHODS

COLUMNS = (
    "cascade", "independent", "data", "smooth-mprt", "class", "random-logit", "efficient-mprt", "pointing",
)  # fmt: skip
CLASS_COLUMNS = ("class", "random-logit")  # "changed" there means the map depends on the class
SHORT = {"spearman_fg": "fg", "spearman_abs": ""}


def cells(findings) -> list[dict]:
    """The records of every cell of ``findings`` (a sanity_suite.Findings), in method then column
    order; values are floats rounded to 4 decimals."""
    out = []
    for (method, column), c in findings.cells.items():
        if column in CLASS_COLUMNS:
            word = "sensitive" if c.changed else "insensitive"
        else:
            word = "changed" if c.changed else "alike"
        out.append(record(method, column, c.protocol, c.measure, c.value, word))
    for method, row in findings.rows.items():
        if "efficient-mprt" in row:
            v = row["efficient-mprt"]
            out.append(
                record(method, "efficient-mprt", "-", "entropy rise", v, "rises" if v > 0 else "falls")
            )
    if "pointing" in findings.results:
        for method, acc in findings.results["pointing"].accuracy.items():
            out.append(record(method, "pointing", "-", "hit rate", acc, ""))
    order = {m: k for k, m in enumerate([*METHODS, "centre"])}
    return sorted(out, key=lambda r: (order.get(r["method"], len(order)), COLUMNS.index(r["test"])))


def record(method, test, protocol, measure, value, verdict) -> dict:
    """One cell's record (see the module docstring); the value rounded to 4 decimals."""
    return {"method": method, "test": test, "protocol": protocol, "measure": measure,
            "value": round(float(value), 4), "verdict": verdict}  # fmt: skip


def _text(record: dict) -> str:
    if record["test"] == "pointing":
        return f"{record['value']:.0%}"
    if not np.isfinite(record["value"]):
        return "n/a"
    mark = SHORT.get(record["measure"], "")
    return f"{record['value']:.2f}{' ' + mark if mark else ''} {record['verdict']}"


def markdown(records, title: str = "method") -> str:
    """A Markdown table of ``records`` (``cells``'s dicts): one row per method (METHODS order), one
    column per test that has a record (COLUMNS order); an empty cell where a test did not run."""
    tests = [c for c in COLUMNS if any(r["test"] == c for r in records)]
    methods = []
    for r in records:
        if r["method"] not in methods:
            methods.append(r["method"])
    by = {(r["method"], r["test"]): r for r in records}
    lines = [f"| {title} | " + " | ".join(tests) + " |", "|---|" + "---|" * len(tests)]
    for m in methods:
        name = METHODS[m][0] if m in METHODS else m
        row = [_text(by[(m, t)]) if (m, t) in by else "" for t in tests]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def protocols(records) -> list[str]:
    """The protocols the records' comparisons used ("-" for measures that compare no maps)."""
    return sorted({r["protocol"] for r in records if r["protocol"] != "-"})
