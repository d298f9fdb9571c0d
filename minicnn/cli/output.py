"""The output folder of a command: checked before any work, created on the first write, every file
written recorded in the command's Report, and no file silently overwritten.

Names are made to be distinct (the image's stem, plus its extension when two inputs share a stem,
plus the tool and the target class); a name that is taken all the same (by an earlier run in the
same folder, or by an earlier file of this run) gets a counter, ``name-2.png``, unless --overwrite.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from minicnn.cli.report import Report
from minicnn.errors import MinicnnError


def safe_name(text: str) -> str:
    """A file-name fragment: letters, digits, '.', '-' and '_' kept, every other run -> '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "x"


@dataclass
class Output:
    """Writes a command's files into ``folder`` and records them in ``report``.

    The folder is created on the first write, so a command that fails before writing leaves
    nothing behind. ``.npz`` files are written only with --save-arrays. ``overwrite``: replace files
    of an earlier run (default: give the new file a numbered name and say so).
    """

    folder: Path
    report: Report
    save_arrays: bool = False
    overwrite: bool = False
    _taken: set = field(default_factory=set)

    def _path(self, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / name
        # a name used earlier in this run is never reused; one from an earlier run only with --overwrite
        n = 1
        while path in self._taken or (path.exists() and not self.overwrite):
            n += 1
            path = self.folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
        self._taken.add(path)
        return path

    def _wrote(self, path: Path, wanted: str) -> Path:
        self.report.paths.append(path)
        note = f" ({wanted} exists; --overwrite replaces it)" if path.name != wanted else ""
        print(f"  wrote {path}{note}")
        return path

    def png(self, name: str, image, caption: str | None = None) -> Path:
        """Write an (H, W, 3) picture; it is one of the report's figures, under ``caption``
        (default: the file's stem)."""
        from minicnn.render.save import save_png

        path = self._wrote(save_png(image, self._path(name)), name)
        self.report.figures[caption or path.stem] = path
        return path

    def text(self, name: str, text: str) -> Path:
        from minicnn.io.atomic import atomic_path

        path = self._path(name)
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return self._wrote(path, name)

    def arrays(self, name: str, arrays: dict, meta: dict) -> Path | None:
        """With --save-arrays: write ``arrays`` (name -> array, any device) and ``meta`` (model,
        image, target, method, settings) as one ``name`` .npz (see render.save.save_npz)."""
        if not self.save_arrays:
            return None
        from minicnn.backend import to_numpy
        from minicnn.render.save import save_npz

        host = {k: to_numpy(v) for k, v in arrays.items()}
        return self._wrote(save_npz(self._path(name), host, meta), name)


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
    return Output(
        folder,
        Report(command),
        save_arrays=getattr(args, "save_arrays", False),
        overwrite=getattr(args, "overwrite", False),
    )
