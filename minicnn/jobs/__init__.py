"""Dataset-wide work cut into shards: the floor between the tools and the command line.

A dataset (``dataset.py``: a folder of images or an .npz, by stable ids) is cut into fixed shards of
image indices (``shards.py``); each shard is one task that a runner (``runners.py``: in-process,
local processes or a Dask cluster) hands to a worker, and its result is written atomically as one
.npz with what produced it, so that ``--resume`` skips the shards already done. Results are merged
by a deterministic, associative merge, so the answer does not depend on the number of workers, the
order in which shards finish or a retry. The jobs: top-k projections (``topk.py``), attribution maps
per image (``attribute.py``), localisation evaluation against true boxes (``localize.py``) and the
randomisation sanity checks per image (``sanity.py``).
"""
