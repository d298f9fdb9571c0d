"""``python -m minicnn``: the same as the ``minicnn`` console script (useful where the script's
folder is not on PATH, e.g. a --user install or a virtual environment that is not activated)."""

import os
import sys

# ``python -m`` puts the working directory first on sys.path. A downloaded model folder may hold
# files named like the modules minicnn imports (h5py.py, numpy.py, json.py), and running minicnn in
# that folder must never import them: the entry is dropped before anything else is imported. The
# package itself is already imported at this point and finds its own modules through its __path__.
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from minicnn.cli.main import main  # noqa: E402  (after the sys.path rule above, on purpose)

sys.exit(main())
