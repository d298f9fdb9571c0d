"""One exception type for everything a user can get wrong.

Messages are one line and say what was expected; the CLI prints them without a traceback and exits 2.
It subclasses ValueError so that ``except ValueError`` in user code keeps working.
"""


class MinicnnError(ValueError):
    """Bad input: a wrong shape, dtype, name, file or option. The message is one line."""
