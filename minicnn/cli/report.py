"""What a command made: the files it wrote, its pictures, tables and numbers, and what it said.

Every subcommand's ``run(args)`` returns a ``Report``. ``minicnn.cli.main`` turns it into the exit
code (and, with --json, into the machine-readable summary of ``summary()``); ``minicnn demo`` builds
its index.html from the reports of the commands it calls, so no picture is looked for on disk and no
table is read back from a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Report:
    """The result of one command.

    command:   the subcommand's name ("saliency", ...).
    paths:     every file written, in the order written.
    figures:   caption -> path of each picture (PNG), a subset of ``paths``.
    tables:    name -> a table, as preformatted text (str) or as rows (a list of dicts).
    numbers:   name -> a measured value (a probability, an error, a time in seconds, ...).
    messages:  the lines the command printed about its results (see ``say``).
    exit_code: 0 when the command did all it was asked; ``demo`` sets 1 when a tool failed and
               ``bench --script`` passes on the script's own code.
    model:     the model file (or "vgg16" for a random network), None when the command has none.
    inputs:    the names of the images the command read, in batch order.
    targets:   one dict per image: {"image": name, "index": class index, "name": class name}.
    methods:   the methods run, with their papers (e.g. "saliency (Simonyan et al. 2013)").
    settings:  the values the command chose or was given (layer, occluder size, steps, ...).
    diagnosis: ``verify``'s explanations of a difference, {"cause", "detail", "residual"} each
               (tools/diagnosis.CAUSES); None for the commands that diagnose nothing (not in --json).
    """

    command: str
    paths: list[Path] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)
    tables: dict[str, str | list] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    exit_code: int = 0
    model: str | None = None
    inputs: list[str] = field(default_factory=list)
    targets: list[dict] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    diagnosis: list | None = None

    def say(self, text: str) -> None:
        """Print one line for the user and keep it in ``messages``."""
        print(text)
        self.messages.append(text)

    def summary(self) -> dict:
        """The report as plain JSON types (what ``--json`` prints): absolute paths as strings, numbers as
        floats, figures as {"caption", "path"} pairs in the order written."""
        extra = {} if self.diagnosis is None else {"diagnosis": [_plain(d) for d in self.diagnosis]}
        return {
            "command": self.command,
            "exit_code": self.exit_code,
            "model": self.model,
            "inputs": list(self.inputs),
            "targets": [dict(t) for t in self.targets],
            "methods": list(self.methods),
            "settings": {k: _plain(v) for k, v in self.settings.items()},
            "files": [str(Path(p).absolute()) for p in self.paths],
            "figures": [{"caption": c, "path": str(Path(p).absolute())} for c, p in self.figures.items()],
            "numbers": {k: _plain(v) for k, v in self.numbers.items()},
            "tables": {k: _plain(v) for k, v in self.tables.items()},
            **extra,
        }


def _plain(value):
    """NumPy scalars, tuples and paths -> JSON types; NaN and infinities -> None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar or 0-d array
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
