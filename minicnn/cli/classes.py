"""Class names and --target: what the user types ('predicted', an index, a name) -> a class index,
and the top-5 lines printed after the forward pass."""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError

TOP5_SHOWN = 10  # images whose top-5 predictions are printed


def class_names(net) -> list[str]:
    """The network's class names from its metadata, or "0", "1", ... when it has none."""
    names = net.meta.get("class_names")
    if names:
        return [str(n) for n in names]
    return [str(i) for i in range(net.shapes()[-1][-1])] if net.input_shape else []


def num_classes(net) -> int:
    """K, the length of the network's score vector (from its shapes, else from its class names)."""
    if net.input_shape:
        return int(np.prod(net.shapes()[-1]))
    return len(class_names(net))


def parse_target(net, text) -> int | str:
    """'predicted', 'label', an index or a class name -> 'predicted', 'label' or a class index.

    'predicted' is what ``minicnn.tools.targets.resolve_targets`` takes; 'label' (the true class of
    each shipped sample) is resolved by ``context.prepare``. A name that names several classes
    (ImageNet has two "crane"s, 134 and 517) is refused with every candidate and its index."""
    names = class_names(net)
    k = num_classes(net)
    text = str(text).strip()
    if text.lower() in ("predicted", "label"):
        return text.lower()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < k:
            raise MinicnnError(f"target {index} out of range: expected a class index 0..{k - 1}")
        return index
    key = text.lower().replace("_", " ")
    matches = [i for i, n in enumerate(names) if n.lower().replace("_", " ") == key]
    if not matches:  # ImageNet names are lists like "tabby, tabby cat": match any alternative
        matches = [
            i
            for i, n in enumerate(names)
            if key in (p.strip().lower().replace("_", " ") for p in n.split(","))
        ]
    if len(matches) > 1:
        listed = "; ".join(f"{i} ({names[i]})" for i in matches)
        raise MinicnnError(
            f"target {text!r} is ambiguous: it names {len(matches)} classes, {listed}; pass the index"
        )
    if not matches:
        shown = ", ".join(names[:20]) + (f", ... ({len(names)} classes)" if len(names) > 20 else "")
        raise MinicnnError(
            f"unknown target {text!r}: expected 'predicted', 'label', an index 0..{k - 1} "
            f"or a class name ({shown})"
        )
    return matches[0]


def target_entries(net, image_names, targets) -> list[dict]:
    """One {"image", "index", "name"} per image: what each image's maps were made for."""
    names = class_names(net)
    return [
        {"image": str(image), "index": int(t), "name": names[int(t)] if int(t) < len(names) else str(int(t))}
        for image, t in zip(image_names, targets, strict=True)
    ]


def target_lines(entries, how: str) -> list[str]:
    """The printed account of the targets: 'target 281 (tabby, tabby cat)' when every image has
    the same, else one line per image (at most TOP5_SHOWN), saying how they were chosen."""
    if not entries:
        return []
    if len({e["index"] for e in entries}) == 1:
        e = entries[0]
        return [f"  target ({how}): class {e['index']} ({e['name']})"]
    lines = [f"  targets ({how}):"]
    lines += [f"    {e['image']}: class {e['index']} ({e['name']})" for e in entries[:TOP5_SHOWN]]
    if len(entries) > TOP5_SHOWN:
        lines.append(f"    ... and {len(entries) - TOP5_SHOWN} more images")
    return lines


def top5_lines(net, scores, names) -> list[str]:
    """One line per image (at most TOP5_SHOWN) with its five most probable classes.

    scores: (N, K) class scores on the host; the probabilities are their softmax in float64, so the
    printed digits do not depend on the network's dtype."""
    from minicnn.layers.softmax import softmax

    labels = class_names(net)
    probs = softmax(np.asarray(scores, dtype=np.float64), axis=1)
    lines = []
    for name, p in list(zip(names, probs, strict=True))[:TOP5_SHOWN]:
        top = np.argsort(-p)[:5]
        lines.append(f"  {name}: top-5 " + ", ".join(f"{labels[i]} {p[i]:.3f}" for i in top))
    if len(names) > TOP5_SHOWN:
        lines.append(f"  ... and {len(names) - TOP5_SHOWN} more images")
    return lines
