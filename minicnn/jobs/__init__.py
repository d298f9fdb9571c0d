"""Dataset-wide work cut into shards: the floor between the tools and the command line.

A dataset (``dataset.py``: a folder of images or an .npz, by stable ids) is cut into fixed shards of
image indices (``shards.py``); each shard is one task that a runner (``runners.py``: in-process,
local processes that die with their client (``lifeline.py``), or a Dask cluster joined within a
bounded time (``cluster.py``)) hands to a worker, and its result is written atomically as one .npz
with what produced it (code, model, settings, the images' content), so that ``--resume`` skips the
shards already done. One driver (``driver.py``) plans, resumes, runs, saves and merges for every
job; a job is a small spec of what a shard computes and how results merge. Merges are deterministic
and associative, so the answer does not depend on the number of workers, the order in which shards
finish or a retry. The jobs: top-k projections (``topk.py``), attribution maps
per image (``attribute.py``), localisation evaluation against true boxes (``localize.py``) and the
randomisation sanity checks per image (``sanity.py``).
"""
