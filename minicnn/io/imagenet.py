"""The 1000 ImageNet-1k (ILSVRC 2012) class names, in the index order pretrained models use.

``minicnn/data/imagenet_classes.txt`` holds one short readable name per line, line i for class i:
the classes sorted by WordNet id (n01440764 "tench" is 0, n15075141 "toilet tissue" is 999), the
order of Keras's and torchvision's ImageNet models (Russakovsky et al. 2015, ILSVRC). Each name is
the first lemma of the synset. The table was derived from two files shipped in the ``timm`` wheel on
PyPI (timm 1.0.31: ``timm/data/_info/imagenet_synsets.txt`` and ``imagenet_synset_to_lemma.txt``).
Two names occur twice because WordNet has two senses: "crane" (134 the bird, 517 the machine) and
"maillot" (638, 639).
"""

from __future__ import annotations

import functools

from minicnn.paths import DATA_DIR


@functools.lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    text = (DATA_DIR / "imagenet_classes.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def class_names() -> list[str]:
    """The 1000 ImageNet class names as a new list; index i is the name of output unit i."""
    return list(_names())
