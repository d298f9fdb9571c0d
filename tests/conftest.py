import os

# Keras 3 must use the PyTorch backend here (no TensorFlow on these machines).
os.environ.setdefault("KERAS_BACKEND", "torch")
