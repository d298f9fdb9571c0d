"""What a command made: the files it wrote, its pictures, tables and numbers, and what it said.

Every subcommand's ``run(args)`` returns a ``Report``. ``minicnn.cli.main`` turns it into the exit
code; ``minicnn demo`` builds its index.html from the reports of the commands it calls, so no
picture is looked for on disk and no table is read back from a file.
"""

from __future__ import annotations

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
    """

    command: str
    paths: list[Path] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)
    tables: dict[str, str | list] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    exit_code: int = 0

    def say(self, text: str) -> None:
        """Print one line for the user and keep it in ``messages``."""
        print(text)
        self.messages.append(text)
