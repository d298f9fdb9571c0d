"""The demo report: one self-contained ``index.html`` beside the pictures it shows.

Plain HTML with inline CSS and relative links only (no scripts, no network), so the out-folder can
be zipped, mailed or opened from disk. Each section is one tool: the command that made it, a
sentence on what the pictures show, the paper it reproduces, and the pictures.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from minicnn.errors import MinicnnError
from minicnn.io.atomic import atomic_path

CSS = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
code, pre { background: #f4f4f4; padding: 0.1em 0.3em; }
pre { padding: 0.8em; overflow-x: auto; }
figure { margin: 1em 0; } figure img { max-width: 100%; image-rendering: pixelated; }
figcaption { color: #555; font-size: 90%; } .paper { color: #555; font-style: italic; }
"""


@dataclass
class Section:
    """One tool's part of the report; ``images`` are paths relative to the report's folder."""

    title: str
    command: str
    text: str
    paper: str
    images: list = field(default_factory=list)
    captions: list = field(default_factory=list)  # one per image (default: the file name)
    table: str | None = None  # preformatted text, e.g. the measured equivalence table
    note: str | None = None  # e.g. why the section is empty


def render_index(title: str, intro: str, sections) -> str:
    """The HTML text of the report (a pure function: strings in, one string out)."""
    e = html.escape
    toc = "".join(f'<li><a href="#s{i}">{e(s.title)}</a></li>' for i, s in enumerate(sections))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{e(intro)}</p>",
        f"<ul>{toc}</ul>",
    ]
    for i, s in enumerate(sections):
        parts += [
            f'<h2 id="s{i}">{e(s.title)}</h2>',
            f"<p>{e(s.text)}</p>",
            f'<p class="paper">{e(s.paper)}</p>',
            f"<p>Made by <code>{e(s.command)}</code></p>",
        ]
        if s.note:
            parts.append(f"<p><strong>{e(s.note)}</strong></p>")
        if s.table:
            parts.append(f"<pre>{e(s.table)}</pre>")
        captions = list(s.captions) + [None] * (len(s.images) - len(s.captions))
        for image, caption in zip(s.images, captions, strict=False):
            ref = Path(image).as_posix()
            text = caption or Path(ref).stem  # the picture's own title says what it shows
            parts.append(
                f'<figure><img src="{e(ref, quote=True)}" alt="{e(text, quote=True)}">'
                f"<figcaption><code>{e(Path(ref).name)}</code></figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_index(folder, title: str, intro: str, sections) -> Path:
    """Write ``folder/index.html`` atomically; every image must exist, relative to ``folder``."""
    folder = Path(folder)
    for s in sections:
        for image in s.images:
            if Path(image).is_absolute() or not (folder / image).is_file():
                raise MinicnnError(f"report image {image} is not a file inside {folder}")
    path = folder / "index.html"
    with atomic_path(path, suffix=".html") as tmp:
        tmp.write_text(render_index(title, intro, sections), encoding="utf-8")
    return path
