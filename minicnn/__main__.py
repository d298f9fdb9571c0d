"""``python -m minicnn``: the same as the ``minicnn`` console script (useful where the script's
folder is not on PATH, e.g. a --user install or a virtual environment that is not activated)."""

import sys

from minicnn.cli.main import main

sys.exit(main())
