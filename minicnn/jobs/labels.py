"""The evaluation file of a dataset: a class label and/or a true box per image, from CSV or JSON.

CSV: a header row with ``image`` (the image's id: its path relative to the dataset folder, or
``images[i]`` in an .npz) and any of ``label``, ``x0``, ``y0``, ``x1``, ``y1`` (box corners in the
pixels the network sees, ends exclusive). JSON: ``{"<id>": {"label": 3, "box": [x0, y0, x1, y1]}}``
or a list of ``{"image": "<id>", "label": ..., "box": [...]}``. Every image named must be in the
dataset; images the file does not name are not evaluated.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError


def read_annotations(path, ids) -> dict:
    """{position in the dataset: (label int or None, box (4,) int64 or None)} for each image named
    in the CSV/JSON file ``path``; ``ids`` are the dataset's ids in order."""
    path = Path(path)
    if not path.is_file():
        raise MinicnnError(f"evaluation file {path} not found (expected a .csv or .json of labels and boxes)")
    try:
        if path.suffix.lower() == ".json":
            records = _json_records(json.loads(path.read_text(encoding="utf-8")))
        elif path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8") as f:
                records = [_csv_record(row) for row in csv.DictReader(f)]
        else:
            raise MinicnnError(f"evaluation file {path}: expected a .csv or .json file")
    except MinicnnError as exc:
        raise MinicnnError(f"{path}: {exc}") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise MinicnnError(f"{path}: not a valid evaluation file ({type(exc).__name__}: {exc})") from None
    if not records:
        raise MinicnnError(f"{path}: names no images")
    position = {name: i for i, name in enumerate(ids)}
    missing = [name for name, _, _ in records if name not in position]
    if missing:
        raise MinicnnError(
            f"{path} names {len(missing)} image(s) that are not in the dataset, first {missing[0]!r}"
        )
    return {position[name]: (label, box) for name, label, box in records}


def _box(values):
    box = np.asarray([int(v) for v in values], dtype=np.int64)
    if box.shape != (4,) or box[2] <= box[0] or box[3] <= box[1]:
        raise MinicnnError(f"a box is (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {values!r}")
    return box


def _csv_record(row):
    if "image" not in row or not row["image"]:
        raise MinicnnError("expected a header row with an 'image' column")
    label = int(row["label"]) if row.get("label") not in (None, "") else None
    corners = [row.get(c) for c in ("x0", "y0", "x1", "y1")]
    box = _box(corners) if all(c not in (None, "") for c in corners) else None
    return row["image"], label, box


def _json_records(doc):
    items = doc.items() if isinstance(doc, dict) else ((r["image"], r) for r in doc)
    out = []
    for name, r in items:
        label = int(r["label"]) if r.get("label") is not None else None
        box = _box(r["box"]) if r.get("box") is not None else None
        out.append((str(name), label, box))
    return out
