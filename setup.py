"""Package discovery that pyproject.toml cannot express: every ``minicnn*`` package found on disk,
plus the top-level ``weights/`` folder (the shipped models and samples, where the README and the
figures point) installed as the package data ``minicnn.weights``, so that a wheel, ``pip install .``
and a git-URL install carry them. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["minicnn", "minicnn.*"]) + ["minicnn.weights"],
    package_dir={"minicnn.weights": "weights"},
)
