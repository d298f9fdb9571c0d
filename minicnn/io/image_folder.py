"""The image files of a folder: one suffix list and one order for every reader in minicnn.

A folder of images is read by the single-image commands (``--image photos/``), by ``mc.topk`` and by
the dataset jobs. All of them take the files whose suffix is in ``IMAGE_SUFFIXES`` (any case),
skip hidden files and folders (a name starting with "."), and sort by the path relative to the
folder in POSIX form, so the order (and a dataset's image ids) is the same on every machine.
``recursive`` says whether subfolders are searched: the dataset readers (``mc.topk``, the jobs)
search them, the single-image commands read the folder's own files only (their outputs are named
after each file's stem, which subfolders could repeat).
"""

from __future__ import annotations

from pathlib import Path

from minicnn.errors import MinicnnError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def image_files(folder, recursive: bool = True) -> list[Path]:
    """The image files under ``folder`` (paths below it), sorted by relative POSIX path.

    recursive: search subfolders too. A folder that is missing, not a folder, or holds no image
    file is one MinicnnError naming the suffixes looked for.
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "not a folder" if folder.exists() else "not found"
        raise MinicnnError(f"folder {folder} {what} (expected a folder of images)")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(
        (
            p
            for p in candidates
            if p.suffix.lower() in IMAGE_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
            and p.is_file()
        ),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    if not files:
        where = " (and its subfolders)" if recursive else ""
        raise MinicnnError(
            f"folder {folder}{where} has no images (expected files ending in {', '.join(IMAGE_SUFFIXES)})"
        )
    return files
