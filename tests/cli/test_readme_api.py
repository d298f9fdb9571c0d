"""README's "The API in a few lines" runs as printed (issue 17: it used a digit.png that is not
shipped, and a class_model call whose images never moved)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from cli_helpers import REPO


def test_the_readme_api_example_runs():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## The API in a few lines", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = dict(os.environ, PYTHONPATH=str(REPO), TQDM_DISABLE="1")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"README's API example failed:\n{proc.stderr[-3000:]}"
