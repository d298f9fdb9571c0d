"""ARCHITECTURE.md kept true, read from the syntax tree: the import floors (from the page's own table),
no import cycle (function-level imports included), the one device fork (no array-module comparison
outside kernels/ and backend.py), layers that describe themselves (no ``.kind`` switch and no test
of a Layer class outside layers/), Numba's cache kept out of the package, and comments that state
rules rather than history.

Each rule is a function of a package folder that returns what breaks it, so the rules run on
minicnn itself and, to show that each can fail, on probe packages written to a temporary folder.
Names are resolved through each file's imports (``import numpy as np``, ``from minicnn.layers import
Conv2D as C``, ``import minicnn as mc``), not by their spelling.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "minicnn"
ARCHITECTURE = ROOT / "ARCHITECTURE.md"

# Where code outside minicnn/layers may read ``.kind``: "path:function" -> why. A layer's kind is
# its name in model files and printed tables; these read it for that, or read another object's
# ``kind``. Anything else asks the layer.
KIND_READS = {
    "network.py:Sequential.__init__": "names: an unnamed layer is called <kind>_<i>",
    "network.py:Sequential.summary": "printed table: the kind column",
    "graph.py:Graph.summary": "printed table: the kind column",
    "cli/cmd_info.py:layer_table": "printed table: the kind column",
    "cli/cmd_equivalence.py:csv_text": "CSV table: LayerRow.kind, the kind column",
    "tools/equivalence.py:simonyan_rows": "table: the kind column of each LayerRow",
    "tools/equivalence.py:EquivalenceResult.simonyan_table": "printed table: LayerRow.kind",
    "tools/cam.py:_cam_head": "message: the layers found where a CAM head was expected",
    "io/native.py:_layer_spec": "serialisation: the kind is the layer's name in the file",
    "io/h5common.py:assign": "message: names the layer whose parameter has the wrong shape",
    "io/h5check.py:check_declared": "not a layer: a NumPy dtype's kind",
}

# ---------------------------------------------------------------------------------------------
# Reading a package


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the package folder ``root``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def parse(path: Path) -> ast.Module:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node  # for the enclosing function of a finding
    return tree


def enclosing(node) -> str:
    """The qualified name of the function (and class) around ``node``; "<module>" at top level."""
    names = []
    while node is not None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        node = getattr(node, "parent", None)
    return ".".join(reversed(names)) or "<module>"


def _type_checking_only(node) -> bool:
    """True inside ``if TYPE_CHECKING:`` (imports that never run)."""
    while node is not None:
        parent = getattr(node, "parent", None)
        if isinstance(parent, ast.If) and node in parent.body:
            test = parent.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                return True
        node = parent
    return False


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    """The absolute module an ImportFrom names (relative imports resolved against ``module``)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_names(tree: ast.Module, module: str, is_package: bool) -> dict[str, str]:
    """Local name -> the dotted name it stands for, from every import in the file (any depth)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node, is_package)
            for alias in node.names:
                names[alias.asname or alias.name] = f"{source}.{alias.name}"
    return names


def dotted(node, names: dict[str, str]) -> str | None:
    """The dotted name an expression stands for (``np`` -> "numpy", ``mc.layers.Conv2D`` ->
    "minicnn.layers.Conv2D"), through the file's imports; None for anything else."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        base = dotted(node.value, names)
        return f"{base}.{node.attr}" if base else None
    return None


def files(root: Path, skip=lambda relative: False):
    """(relative path, module name, tree, imported names) of every file not skipped."""
    for module, path in modules(root).items():
        relative = path.relative_to(root).as_posix()
        if skip(relative):
            continue
        tree = parse(path)
        yield relative, module, tree, imported_names(tree, module, path.name == "__init__.py")


# ---------------------------------------------------------------------------------------------
# The rules: each returns its findings, "path:line: what" (or cycles as lists of modules)

ARRAY_MODULES = ("numpy", "cupy")
ARRAY_MODULE_CALLS = ("get_xp", "cupy_module", "module_for", "get_array_module")


def _is_array_module(node, names) -> bool:
    """``np``, ``cupy``, ``xp`` (minicnn's name for "the array module"), ``net.xp``, or a call that
    returns an array module (``get_xp(x)``, ``cupy.get_array_module(x)``...)."""
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        return name in ARRAY_MODULE_CALLS
    if isinstance(node, ast.Name) and node.id == "xp":
        return True
    if isinstance(node, ast.Attribute) and node.attr == "xp":
        return True
    full = dotted(node, names)
    return full is not None and full.split(".")[0] in ARRAY_MODULES and "." not in full


def device_forks(root: Path) -> list[str]:
    """Comparisons of an array module (``xp is np``, ``get_xp(x) is not np``, ``xp == cupy``,
    ``xp in (np,)``) outside kernels/ and backend.py: the device fork lives there only."""
    skip = lambda relative: relative.startswith("kernels/") or relative == "backend.py"  # noqa: E731
    found = []
    for relative, _, tree, names in files(root, skip):
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(_is_array_module(o, names) for o in operands):
                    found.append(f"{relative}:{node.lineno}: {ast.unparse(node)}")
    return found


def _kind_reads(root: Path):
    """(path, enclosing function, line, source) of every ``x.kind`` or ``getattr(x, "kind")``
    outside layers/."""
    for relative, _, tree, _ in files(root, lambda r: r.startswith("layers/")):
        for node in ast.walk(tree):
            read = isinstance(node, ast.Attribute) and node.attr == "kind" and isinstance(node.ctx, ast.Load)
            read |= (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value == "kind"
            )
            if read:
                yield relative, enclosing(node), node.lineno, ast.unparse(node)


def kind_reads(root: Path, allowed: dict[str, str]) -> list[str]:
    """``.kind`` reads outside layers/ in a function that ``allowed`` ("path:function") does not list."""
    return [
        f"{path}:{line} in {function}: {text}"
        for path, function, line, text in _kind_reads(root)
        if f"{path}:{function}" not in allowed
    ]


def layer_classes(root: Path) -> set[str]:
    """Names of the classes in layers/ that derive from ``Layer`` (directly or not), Layer excluded."""
    bases = {}
    for path in (root / "layers").rglob("*.py"):
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                }
    subclasses, grew = set(), True
    while grew:
        grew = False
        for name, parents in bases.items():
            if name not in subclasses and parents & (subclasses | {"Layer"}):
                subclasses.add(name)
                grew = True
    return subclasses


def layer_type_checks(root: Path) -> list[str]:
    """``isinstance(x, C)``, ``issubclass(t, C)``, ``type(x) is/== C`` with C a Layer subclass of this
    package (resolved through the imports: torch's nn.ReLU is not minicnn's ReLU), or
    ``type(x).__name__ == "C"``, outside layers/."""
    package, classes = root.name, layer_classes(root)

    def is_layer_class(node, names) -> bool:
        targets = node.elts if isinstance(node, ast.Tuple) else [node]
        for target in targets:
            full = dotted(target, names)
            if full and full.split(".")[0] == package and full.split(".")[-1] in classes:
                return True
        return False

    def names_a_layer_class(node) -> bool:
        """A string (or a tuple, list or set of strings) naming a Layer subclass: the class's name
        compared with ``type(x).__name__`` is the same test as isinstance, spelt as text."""
        targets = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
        return any(isinstance(t, ast.Constant) and t.value in classes for t in targets)

    found = []
    for relative, _, tree, names in files(root, lambda r: r.startswith("layers/")):
        for node in ast.walk(tree):
            hit = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("isinstance", "issubclass")
                and len(node.args) == 2
                and is_layer_class(node.args[1], names)
            )
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                hit |= any(
                    isinstance(o, ast.Call) and isinstance(o.func, ast.Name) and o.func.id == "type"
                    for o in operands
                ) and any(is_layer_class(o, names) for o in operands)
                hit |= any(isinstance(o, ast.Attribute) and o.attr == "__name__" for o in operands) and any(
                    names_a_layer_class(o) for o in operands
                )
            if hit:
                found.append(f"{relative}:{node.lineno}: {ast.unparse(node)}")
    return found


def import_edges(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at any depth of the file (function-level imports
    too; ``if TYPE_CHECKING:`` blocks, which never run, not). ``from p import name`` is an edge to
    the submodule p.name where there is one, else to p."""
    known = modules(root)
    edges: dict[str, set[str]] = {m: set() for m in known}
    for _, module, tree, _ in files(root):
        is_package = known[module].name == "__init__.py"
        for node in ast.walk(tree):
            if _type_checking_only(node):
                continue
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(module, node, is_package)
                targets = [
                    f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names
                ]
            edges[module] |= {t for t in targets if t in known and t != module}
    return edges


def import_cycles(root: Path) -> list[list[str]]:
    """Every group of modules that import one another in a circle (Tarjan's strongly connected
    components of ``import_edges`` with more than one module), each sorted."""
    edges = import_edges(root)
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(cycles)


def read_floors(markdown: str) -> tuple[dict[str, int], dict[int, set]]:
    """From the "## Floors" table of ARCHITECTURE.md: (top-level module or subpackage -> floor,
    floor -> what it may import: a set of floors, or of module names where the cell names modules).

    The "modules" cell names `x.py` files and `x/` folders in backticks; the "may import" cell is
    "floor N", "floors A-B", "everything", or module names in backticks ("`errors.py` only").
    """
    section = markdown.split("## Floors", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    col_floor, col_modules, col_may = (
        header.index("floor"),
        header.index("modules"),
        header.index("may import"),
    )
    floors, may = {}, {}
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        floor = int(cells[col_floor])
        for name in re.findall(r"`([\w.]+/?)`", cells[col_modules]):
            floors[name.removesuffix("/").removesuffix(".py")] = floor
        cell = cells[col_may]
        span = re.fullmatch(r"floors? (\d+)(?:-(\d+))?", cell)
        if cell == "everything":
            may[floor] = set(range(floor + 1))
        elif span:
            may[floor] = set(range(int(span[1]), int(span[2] or span[1]) + 1)) | {floor}
        else:
            named = re.findall(r"`([\w.]+/?)`", cell)
            assert named, f"floor {floor}: cannot read 'may import' cell {cell!r}"
            may[floor] = {n.removesuffix("/").removesuffix(".py") for n in named}
    return floors, may


def upward_imports(root: Path, floors: dict[str, int], may: dict[int, set]) -> list[str]:
    """Imports that break the table: a module importing a floor (or, where the cell names modules,
    a module) that its floor may not import. Imports inside one top-level module or subpackage
    are its own business."""
    package = root.name
    found = []
    for module, targets in import_edges(root).items():
        parts = module.split(".")
        if len(parts) < 2 or parts[1] not in floors:
            continue
        mine = floors[parts[1]]
        for target in sorted(targets):
            theirs = target.split(".")
            if len(theirs) < 2 or theirs[1] == parts[1] or theirs[0] != package:
                continue
            allowed = may[mine]
            ok = (
                floors.get(theirs[1]) in allowed
                if all(isinstance(a, int) for a in allowed)
                else theirs[1] in allowed
            )
            if not ok:
                found.append(f"{module} (floor {mine}) imports {target} (floor {floors.get(theirs[1])})")
    return found


NUMBA_DECORATORS = (
    "numba.njit",
    "numba.jit",
    "numba.vectorize",
    "numba.guvectorize",
    "numba.cfunc",
    "numba.stencil",
)


def numba_disk_caches(root: Path) -> list[str]:
    """Numba decorators asked for ``cache=True``: Numba would write the compiled code next to the
    source (site-packages/minicnn/.../__pycache__), where it outlives the install. minicnn's kernels
    take ``kernels/compiled.njit``, which caches in the user's folder."""
    found = []
    for relative, _, tree, names in files(root):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and dotted(node.func, names) in NUMBA_DECORATORS:
                cache = [k for k in node.keywords if k.arg == "cache"]
                if cache and not (isinstance(cache[0].value, ast.Constant) and cache[0].value.value is False):
                    found.append(f"{relative}:{node.lineno}: {ast.unparse(node)}")
    return found


# History belongs in commit messages and benchmarks/RESULTS.md, not in the code's explanations.
HISTORY = re.compile(
    r"\bissues? \d+|(?<![\w&])#\d+\b|\b20\d\d-\d\d-\d\d\b"
    r"|\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|earlier|previous|last|this"
    r"|next|review|development) sessions?\b",
    re.IGNORECASE,
)


def explanations(path: Path):
    """(line, text) of every comment and docstring of a file (strings in code are not explanations)."""
    source = path.read_text(encoding="utf-8")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                first = node.body[0].lineno
                for offset, line in enumerate(doc.splitlines()):
                    yield first + offset, line


def history_in_explanations(root: Path) -> list[str]:
    """Comments and docstrings that cite issue numbers, work sessions or dates."""
    return [
        f"{path.relative_to(root).as_posix()}:{line}: {text.strip()}"
        for path in sorted(root.rglob("*.py"))
        for line, text in explanations(path)
        if HISTORY.search(text)
    ]


# ---------------------------------------------------------------------------------------------
# The rules on minicnn


@pytest.fixture(scope="module")
def table():
    return read_floors(ARCHITECTURE.read_text(encoding="utf-8"))


def test_every_module_has_a_floor_and_every_floor_entry_exists(table):
    floors, _ = table
    top = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")}
    assert top - {"__init__", "__main__"} == set(floors), (
        sorted(top - set(floors) - {"__init__", "__main__"}),
        sorted(set(floors) - top),
    )


def test_no_module_imports_above_its_floor(table):
    assert upward_imports(PACKAGE, *table) == []


def test_no_import_cycle():
    assert import_cycles(PACKAGE) == []


def test_device_forks_only_in_kernels_and_backend():
    assert device_forks(PACKAGE) == []


def test_no_layer_kind_switch_outside_layers():
    assert kind_reads(PACKAGE, KIND_READS) == []


def test_every_kind_allowance_is_still_used():
    """An allowance whose function no longer reads ``.kind`` is dropped, so the list stays honest."""
    used = {f"{path}:{function}" for path, function, _, _ in _kind_reads(PACKAGE)}
    assert sorted(set(KIND_READS) - used) == []


def test_no_layer_type_checks_outside_layers():
    assert layer_type_checks(PACKAGE) == []


def test_the_layer_classes_are_found():
    assert {"Conv2D", "ReLU", "MaxPool2D", "Dense", "Flatten", "Softmax"} <= layer_classes(PACKAGE)


def test_numba_kernels_cache_outside_the_package():
    assert numba_disk_caches(PACKAGE) == []


def test_explanations_state_rules_not_history():
    assert history_in_explanations(PACKAGE) == []


def test_the_output_size_formula_is_written_once():
    # (size [+ 2 * padding] - kernel) // stride + 1, in any spelling of the names
    regex = re.compile(r"\((\w+)\s*(\+\s*2\s*\*\s*\w+\s*)?-\s*k\w*\)\s*//\s*(self\.)?stride\s*\+\s*1")
    found = [
        p.relative_to(PACKAGE).as_posix()
        for p in sorted(PACKAGE.rglob("*.py"))
        for line in p.read_text(encoding="utf-8").splitlines()
        if regex.search(line)
    ]
    assert found == ["geometry.py"], found


# ---------------------------------------------------------------------------------------------
# Each rule fails on a probe package


PROBE = {
    "layers/__init__.py": "from probe.layers.conv import Conv2D\n",
    "layers/base.py": "class Layer:\n    kind = 'Layer'\n",
    "layers/conv.py": (
        "from probe.layers.base import Layer\n"
        "class _Shared(Layer):\n    pass\n"
        "class Conv2D(_Shared):\n    kind = 'Conv2D'\n"
        "def fine(layer):\n    return layer.kind == 'Conv2D'  # inside layers/: its own business\n"
    ),
    "kernels/__init__.py": "",
    "kernels/im2col.py": "import numpy as np\ndef f(xp):\n    return xp is np  # the kernels' own fork\n",
    "backend.py": "import numpy as np\ndef get_xp(a):\n    return np\n",
    "errors.py": "",
    "tools/__init__.py": "",
    "tools/fork.py": (
        "import numpy\nimport cupy as cp\nfrom probe.backend import get_xp\nfrom probe import backend\n"
        "def a(x):\n    return get_xp(x) is numpy\n"
        "def b(x, xp):\n    return xp is cp\n"
        "def c(net):\n    return net.xp == numpy\n"
        "def d(x):\n    return backend.get_xp(x) in (numpy,)\n"
        "def fine(x):\n    return numpy.asarray(x) is x\n"
    ),
    "tools/kind.py": (
        "RULES = {}\n"
        "def a(layer):\n    return RULES.get(layer.kind)\n"
        "def b(layer):\n    return getattr(layer, 'kind')\n"
        "def named(layer):\n    return f'{layer.name} ({layer.kind})'\n"
    ),
    "tools/types.py": (
        "import probe as mc\nfrom probe.layers import Conv2D as C\nfrom probe.layers.conv import _Shared\n"
        "from torch import nn\n"
        "def a(layer):\n    return isinstance(layer, C)\n"
        "def b(layer):\n    return isinstance(layer, (int, mc.layers.conv.Conv2D))\n"
        "def c(layer):\n    return type(layer) is C\n"
        "def d(layer):\n    return issubclass(type(layer), _Shared)\n"
        "def e(layer):\n    return type(layer).__name__ in ('Conv2D', 'X')\n"
        "def fine(module):\n    return isinstance(module, nn.Conv2D)  # torch's, not ours\n"
    ),
    "io/__init__.py": "from probe.io.loader import load\n",
    "io/loader.py": "from probe.io import guard\ndef load():\n    return guard\n",
    "io/guard.py": "def check():\n    from probe.io.loader import load  # function-level\n    return load\n",
    "io/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from probe.tools import fork\n",
    "geometry.py": "from probe.errors import *\nfrom probe.tools import fork  # floor 0 importing floor 5\n",
    "pages.py": "from probe import geometry  # floor 0 may import errors only\n",
    "kernels/cached.py": (
        "import numba\nfrom numba import njit as jit\n"
        "@numba.njit(cache=True)\ndef a(x):\n    return x\n"
        "@jit(parallel=True, cache=True)\ndef b(x):\n    return x\n"
        "@numba.njit(cache=False)\ndef fine(x):\n    return x\n"
    ),
    "history.py": (
        '"""Faster since issue 19."""\n'
        "COLOR = '#222; see #30'  # a string in code, not an explanation\n"
        "def f():\n    # measured in the fifth session (#30), 2026-12-01\n"
        '    """A Session runs tasks; a session of the runner."""\n'
    ),
}

PROBE_TABLE = """
## Floors

| floor | modules | what | may import |
|---|---|---|---|
| 0 | `errors.py`, `geometry.py`, `backend.py`, `pages.py` | base | `errors.py` only |
| 1 | `kernels/` | kernels | floor 0 |
| 2 | `layers/` | layers | floors 0-1 |
| 4 | `io/` | files | floors 0-2 |
| 5 | `tools/` | tools | everything |

## Next
"""


@pytest.fixture
def probe(tmp_path):
    root = tmp_path / "probe"
    for name, text in PROBE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "__init__.py").write_text("")
    return root


def _lines(found: list[str]) -> set[str]:
    """{"path:line"} of a rule's findings."""
    return {f.split(": ")[0].split(" in ")[0] for f in found}


def test_probe_device_forks(probe):
    assert _lines(device_forks(probe)) == {
        "tools/fork.py:6",
        "tools/fork.py:8",
        "tools/fork.py:10",
        "tools/fork.py:12",
    }


def test_probe_kind_reads(probe):
    assert _lines(kind_reads(probe, {"tools/kind.py:named": "message"})) == {
        "tools/kind.py:3",
        "tools/kind.py:5",
    }
    assert len(kind_reads(probe, {})) == 3


def test_probe_layer_type_checks(probe):
    assert layer_classes(probe) == {"_Shared", "Conv2D"}
    assert _lines(layer_type_checks(probe)) == {
        "tools/types.py:6",
        "tools/types.py:8",
        "tools/types.py:10",
        "tools/types.py:12",
        "tools/types.py:14",
    }


def test_probe_import_cycle(probe):
    assert import_cycles(probe) == [["probe.io.guard", "probe.io.loader"]]


def test_probe_floors(probe):
    floors, may = read_floors(PROBE_TABLE)
    assert floors == {
        "errors": 0,
        "geometry": 0,
        "backend": 0,
        "pages": 0,
        "kernels": 1,
        "layers": 2,
        "io": 4,
        "tools": 5,
    }
    assert may[0] == {"errors"} and may[2] == {0, 1, 2} and may[5] == {0, 1, 2, 3, 4, 5}
    assert upward_imports(probe, floors, may) == [
        "probe.geometry (floor 0) imports probe.tools.fork (floor 5)",
        "probe.pages (floor 0) imports probe.geometry (floor 0)",
    ]


def test_probe_history(probe):
    assert _lines(history_in_explanations(probe)) == {"history.py:1", "history.py:4"}


def test_probe_numba_disk_caches(probe):
    assert _lines(numba_disk_caches(probe)) == {"kernels/cached.py:3", "kernels/cached.py:6"}
