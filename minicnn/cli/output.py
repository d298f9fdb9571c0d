"""The output folder of a command: checked before any work, created on the first write, and every
file written recorded in the command's Report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from minicnn.cli.report import Report
from minicnn.errors import MinicnnError


@dataclass
class Output:
    """Writes a command's files into ``folder`` and records them in ``report``.

    The folder is created on the first write, so a command that fails before writing leaves
    nothing behind. ``.npy`` files are written only with --save-arrays.
    """

    folder: Path
    report: Report
    save_arrays: bool = False

    def _path(self, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / name

    def _wrote(self, path: Path) -> Path:
        self.report.paths.append(path)
        print(f"  wrote {path}")
        return path

    def png(self, name: str, image) -> Path:
        """Write an (H, W, 3) picture; it is one of the report's figures, captioned by its stem."""
        from minicnn.render.save import save_png

        path = self._wrote(save_png(image, self._path(name)))
        self.report.figures[path.stem] = path
        return path

    def text(self, name: str, text: str) -> Path:
        from minicnn.io.atomic import atomic_path

        path = self._path(name)
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return self._wrote(path)

    def npy(self, name: str, array) -> Path | None:
        """Write ``array`` (any device) only with --save-arrays."""
        if not self.save_arrays:
            return None
        from minicnn.backend import to_numpy
        from minicnn.render.save import save_npy

        return self._wrote(save_npy(to_numpy(array), self._path(name)))


def open_output(args, command: str) -> Output:
    """The Output of ``command`` for --out (default ./minicnn-out/<command>), with a new Report.

    Checks now, before any work, that the folder can be made; a MinicnnError says why not."""
    folder = Path(args.out if args.out is not None else Path("minicnn-out") / command)
    if folder.exists() and not folder.is_dir():
        raise MinicnnError(f"--out {folder} exists and is not a folder (expected a folder)")
    # the nearest existing ancestor must be a writable folder (the folder itself is made later)
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise MinicnnError(f"--out {folder} cannot be written (expected a writable folder)")
    return Output(folder, Report(command), save_arrays=getattr(args, "save_arrays", False))
