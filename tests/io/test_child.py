"""``io/child.run_in_child``: a function run in a child process, its failures one MinicnnError, and
with ``echo`` its stderr (a framework's progress bar, lines ended by \\r) copied to ours while it
still runs. The entries below are this module's functions, imported by name in the child."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from minicnn.errors import MinicnnError
from minicnn.io.child import run_in_child


def waits_for_its_echo(folder: str) -> None:
    """Writes half a progress bar (no newline), then waits for the parent to answer with a file."""
    sys.stderr.write("progress 50%\r")
    sys.stderr.flush()
    go = Path(folder) / "go"
    for _ in range(600):
        if go.exists():
            (Path(folder) / "done").write_text("ok")
            return
        time.sleep(0.05)
    raise SystemExit(1)


def chatty_then_refuses(folder: str) -> None:
    """Fills stdout and stderr well past a pipe's 64 KiB, then raises a MinicnnError."""
    sys.stdout.write("x" * 300_000 + "\n")
    sys.stderr.write("warning\n" * 40_000)
    raise MinicnnError("the model file names no function vgg")


def crashes_with_a_message(folder: str) -> None:
    sys.stderr.write("first line\nTypeError: the last line\n")
    raise SystemExit(3)


class Recorder:
    """A stand-in for sys.stderr that answers the child's progress with the file it waits for."""

    def __init__(self, folder: Path):
        self.folder, self.text = folder, ""

    def write(self, text: str) -> None:
        self.text += text
        if "progress 50%" in self.text:
            (self.folder / "go").write_text("")

    def flush(self) -> None:
        pass


def test_echo_copies_the_childs_stderr_while_it_runs(tmp_path, monkeypatch):
    """The child waits (up to 30 s) for a file that the parent writes only when it has seen the
    child's unfinished progress line: without the copy as it comes, the child would exit 1."""
    recorder = Recorder(tmp_path)
    monkeypatch.setattr(sys, "stderr", recorder)
    run_in_child(f"{__name__}:waits_for_its_echo", tmp_path, "test", timeout=60, echo=True)
    assert (tmp_path / "done").read_text() == "ok" and recorder.text == "progress 50%\r"


def test_without_echo_nothing_is_copied(tmp_path, monkeypatch):
    recorder = Recorder(tmp_path)
    monkeypatch.setattr(sys, "stderr", recorder)
    (tmp_path / "go").write_text("")
    run_in_child(f"{__name__}:waits_for_its_echo", tmp_path, "test", timeout=60)
    assert recorder.text == "" and (tmp_path / "done").exists()


def test_full_pipes_do_not_block_and_the_message_is_the_childs(tmp_path):
    """300 kB on stdout and 320 kB on stderr (pipes hold 64 KiB) before a MinicnnError: one error
    with the child's own message, well within the timeout."""
    done = []
    thread = threading.Thread(
        target=lambda: done.append(_error(tmp_path, "chatty_then_refuses")), daemon=True
    )
    thread.start()
    thread.join(120)
    assert done == ["test: the model file names no function vgg"]


def test_a_failure_names_the_last_line_of_stderr(tmp_path):
    assert _error(tmp_path, "crashes_with_a_message") == "test: failed (TypeError: the last line)"


def _error(folder, entry) -> str:
    with pytest.raises(MinicnnError) as caught:
        run_in_child(f"{__name__}:{entry}", folder, "test", timeout=60)
    return str(caught.value)
