"""ARCHITECTURE.md kept true: the import floors, the one device fork, layers that describe themselves.

These read the source (ast and text), so they fail the moment a module imports upward, a device
branch appears outside minicnn/kernels, or code outside minicnn/layers switches on a layer's kind.
"""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "minicnn"

# floor of each top-level module or subpackage (ARCHITECTURE.md, "Floors"); a module may import its
# own floor and the floors below it, never above.
FLOORS = {
    "errors": 0, "geometry": 0, "backend": 0, "paths": 0, "seeding": 0, "pages": 0,
    "kernels": 1,
    "layers": 2,
    "record": 3, "network": 3, "zoo": 3,
    "io": 4, "train": 4,
    "tools": 5,
    "render": 6,
    "jobs": 7,
    "cli": 8,
}  # fmt: skip


def floor_of(module: str):
    parts = module.split(".")
    return FLOORS.get(parts[1]) if len(parts) > 1 else None


def sources():
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_floor():
    top = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in sources()}
    assert top - {"__init__", "__main__"} <= set(FLOORS), sorted(top - set(FLOORS))


def test_no_module_imports_upward():
    upward = []
    for path in sources():
        module = ".".join(("minicnn", *path.relative_to(PACKAGE).with_suffix("").parts))
        mine = floor_of(module)
        if mine is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                theirs = floor_of(name) if name.startswith("minicnn.") else None
                if theirs is not None and theirs > mine:
                    upward.append(f"{module} imports {name}")
    assert not upward, upward


def lines_matching(pattern: str, skip=lambda path: False) -> list[str]:
    """'file:line: text' for every source line that matches ``pattern``, outside the skipped files."""
    regex = re.compile(pattern)
    return [
        f"{p.relative_to(PACKAGE)}:{i}: {line.strip()}"
        for p in sources()
        if not skip(p)
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if regex.search(line)
    ]


def test_device_branches_only_in_kernels_and_backend():
    found = lines_matching(
        r"xp is np|is np\)|is not np", skip=lambda p: p.parts[-2] == "kernels" or p.name == "backend.py"
    )
    assert not found, found


def test_no_layer_kind_switch_outside_layers():
    found = lines_matching(
        r"\.kind ==|\.kind in\b|\.kind not in|kind == \"", skip=lambda p: p.parts[-2] == "layers"
    )
    assert not found, found


def test_the_output_size_formula_is_written_once():
    # (size [+ 2 * padding] - kernel) // stride + 1, in any spelling of the names
    found = lines_matching(r"\((\w+)\s*(\+\s*2\s*\*\s*\w+\s*)?-\s*k\w*\)\s*//\s*(self\.)?stride\s*\+\s*1")
    assert [f.split(":")[0] for f in found] == ["geometry.py"], found
