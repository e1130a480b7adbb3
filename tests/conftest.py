"""Shared pytest fixtures: the repository, the data folders, the shipped recognizer.

The heavy objects (MNIST test arrays, the loaded recognizer) are loaded once per session.

- ``repo_root``: the repository root, for subprocess ``cwd``;
- ``mnist_dir`` / ``mnist_test``: ``$MNIST_DIR`` and its test split as numpy arrays
  (tests that need them skip when it is unset);
- ``photos_dir`` / ``real_dir``: the real photo folders ``$PHOTOS_DIR`` / ``$REAL_DIR``
  (skip when unset; fail when set to something that is not a folder: a broken setup);
- ``recognizer``: ``Recognizer.load()`` of the shipped checkpoints.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest

PHOTOS_ENV = "PHOTOS_DIR"
REAL_ENV = "REAL_DIR"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder holding ``training/``), for subprocess ``cwd``."""
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The MNIST folder named by ``$MNIST_DIR``; tests that need it skip when it is unset."""
    value = os.environ.get("MNIST_DIR")
    if not value:
        pytest.skip("MNIST_DIR is not set: point it at the folder with the four MNIST .gz files")
    return Path(value).expanduser().resolve()


@functools.lru_cache(maxsize=2)
def _mnist_test_arrays(data_dir: str) -> tuple[np.ndarray, np.ndarray]:
    from training.data import load_mnist

    images, labels = load_mnist("test", data_dir)
    return images.numpy(), labels.numpy()


@pytest.fixture(scope="session")
def mnist_test(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test split as numpy arrays (converted once per session)."""
    return _mnist_test_arrays(str(mnist_dir))


def _data_folder(env: str, what: str) -> Path:
    value = os.environ.get(env)
    if not value:
        pytest.skip(f"{env} is not set: point it at the {what} folder")
    path = Path(value).expanduser()
    if not path.is_dir():
        pytest.fail(f"{env}={value} is not a folder")
    return path


@pytest.fixture(scope="session")
def photos_dir() -> Path:
    """The older real photos folder (``digits/labels.csv``, ``sheets/labels.json``)."""
    return _data_folder(PHOTOS_ENV, "real photos (digits/labels.csv and sheets/labels.json)")


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """The real photos folder (``digits/``, ``sheets/``, ``negatives/``)."""
    return _data_folder(REAL_ENV, "real photos (digits/, sheets/, negatives/)")


@functools.lru_cache(maxsize=2)
def _load_recognizer(path: str):
    from realtime.recognizer import Recognizer

    return Recognizer.load(path)


@pytest.fixture(scope="session")
def recognizer():
    """The shipped recognizer, loaded once per session."""
    from realtime.recognizer import default_weights

    path = default_weights()
    if not path.is_file():
        pytest.skip(f"no trained checkpoint at {path}: train one (python -m training) or set $DIGITS_WEIGHTS")
    return _load_recognizer(str(path))
