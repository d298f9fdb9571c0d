"""Entry point of the ``minicnn`` console script.

Each subcommand lives in ``minicnn/cli/cmd_<name>.py`` and defines ``HELP`` (one line),
``EPILOG`` (an example), ``add_arguments(parser)`` and ``run(args) -> Report`` (what it made, see
report.py; ``minicnn demo`` calls the same ``run`` functions and builds its page from the reports).
Modules import their heavy dependencies inside ``run`` so that ``minicnn --help`` is instant.

Errors a user can cause (MinicnnError, a missing file, an unwritable folder) are printed as one line
on stderr, with exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = (
    "demo", "saliency", "reconstruct", "equivalence", "occlusion", "cam", "classmodel",
    "maximize", "invert", "topk", "localize", "info", "train", "bench",
)  # fmt: skip


EPILOG = """\
quick start:
  minicnn demo          # every tool on the shipped digit models -> minicnn-out/demo/index.html
  minicnn saliency --weights vgg16_weights_tf_dim_ordering_tf_kernels.h5 --image photo.jpg

'minicnn COMMAND --help' explains each command with an example.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minicnn",
        description="See what a VGG-style network has learned.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"minicnn.cli.cmd_{name}")
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            epilog=getattr(module, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from minicnn.errors import MinicnnError

    try:
        return args.run(args).exit_code
    except (MinicnnError, OSError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"minicnn {args.command}: error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"minicnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
