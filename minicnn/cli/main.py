"""Entry point of the ``minicnn`` console script.

Each subcommand lives in ``minicnn/cli/cmd_<name>.py`` and defines ``HELP`` (one line),
``EPILOG`` (an example), ``add_arguments(parser)`` and ``run(args) -> Report`` (what it made, see
report.py; ``minicnn demo`` calls the same ``run`` functions and builds its page from the reports).
Modules import their heavy dependencies inside ``run`` so that ``minicnn --help`` is instant.

Errors a user can cause (MinicnnError, a missing file, an unwritable folder) are printed as one line
on stderr, with exit code 2 and no traceback. Every command also takes --json (the Report as JSON
on stdout) and --no-progress; ``minicnn --version`` and ``python -m minicnn`` work as expected.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import warnings

COMMANDS = (
    "demo", "saliency", "reconstruct", "equivalence", "occlusion", "cam", "classmodel",
    "maximize", "invert", "topk", "localize", "info", "train", "bench", "verify", "evaluate",
    "attribute", "sanity", "sanity-study", "faithfulness", "roar",
)  # fmt: skip


EPILOG = """\
quick start:
  minicnn demo          # every tool on the shipped digit models -> minicnn-out/demo/index.html
  minicnn saliency --weights vgg16_weights_tf_dim_ordering_tf_kernels.h5 --image photo.jpg

'minicnn COMMAND --help' explains each command with an example.
"""


def version() -> str:
    """The installed distribution's version (what pip reports), else the package's own."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    from minicnn.errors import DISTRIBUTION

    try:
        return dist_version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        from minicnn import __version__

        return __version__


def add_output_modes(parser) -> None:
    """--json and --no-progress: every command has them (added here, once)."""
    parser.add_argument(
        "--json", action="store_true",
        help="print a machine-readable summary (model, inputs, targets, methods, files, numbers) on "
        "stdout; the usual lines go to stderr",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (on stderr)")


class Parser(argparse.ArgumentParser):
    """argparse with minicnn's error rule: a bad option is one line on stderr that names the option
    and what was expected (argparse's own also prints the usage block first), exit code 2. The
    subcommands' parsers are of this class too (argparse makes them with the parent's class)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="minicnn",
        description="See what a VGG-style network has learned.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"minicnn {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"minicnn.cli.cmd_{name.replace('-', '_')}")
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            epilog=getattr(module, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        add_output_modes(p)
        p.set_defaults(run=module.run)
    return parser


def _warning_line(command: str):
    """Python's warning printer for the command: one line naming the command, never the source file
    and line of minicnn's code (they mean nothing to a user of the command)."""

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message).splitlines()[0] if str(message) else category.__name__
        print(f"minicnn {command}: warning: {text}", file=sys.stderr if file is None else file)

    return show


def main(argv=None) -> int:
    # The command owns its process: minicnn's process settings (minicnn/process.py), first thing,
    # before anything loads NumPy. A library import of minicnn leaves them to the program.
    from minicnn.process import tune_process

    tune_process()
    for stream in (sys.stdout, sys.stderr):
        # a file name that is not UTF-8 (kept by Python as surrogates) must print, not raise
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    from minicnn.cli.terminal import escape_terminal_output

    escape_terminal_output()  # strings from files never reach the terminal as control sequences
    args = build_parser().parse_args(argv)
    warnings.showwarning = _warning_line(args.command)
    if args.no_progress:
        # every tqdm bar, also in code that takes no progress= argument; tqdm reads its TQDM_*
        # defaults when first imported, which no command has done yet at this point
        os.environ["TQDM_DISABLE"] = "1"
    from minicnn.errors import MinicnnError

    try:
        if not args.json:
            return args.run(args).exit_code
        # stdout carries the JSON alone: everything the command prints goes to stderr meanwhile
        with contextlib.redirect_stdout(sys.stderr):
            report = args.run(args)
        print(json.dumps(report.summary(), indent=2, allow_nan=False))
        return report.exit_code
    except BrokenPipeError:
        # the reader of stdout left (``minicnn info m.h5 | head``): stop quietly, as a pipe's writer
        # does; Python's own flush at exit must not fail on the closed pipe either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.__stdout__.fileno())
        return 141
    except (MinicnnError, OSError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"minicnn {args.command}: error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"minicnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
