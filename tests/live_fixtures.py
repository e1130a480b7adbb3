"""Fixtures for the live-recognition tests (segmentation, normalization, recognizer, live view).

Import them into a test module with ``from tests.live_fixtures import *``. The heavy
objects (MNIST test arrays, the loaded recognizer) are cached at module level, so every
test module that imports these fixtures shares one copy per session.

- ``mnist_test``: ``(images uint8 [10000, 28, 28], labels [10000])`` as numpy, from
  ``$MNIST_DIR`` (skips when it is unset, through the ``mnist_dir`` fixture of conftest).
- ``photos_dir``: the real photos folder ``$PHOTOS_DIR`` (skips when unset; fails when
  set to something that is not a folder, since that is a broken setup, not a choice).
- ``recognizer``: ``Recognizer.load()`` of the default checkpoint (``$DIGITS_WEIGHTS`` or
  ``assets/digits.pt``); skips when that file is missing.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest

__all__ = ["mnist_test", "photos_dir", "recognizer"]

PHOTOS_ENV = "PHOTOS_DIR"


@functools.lru_cache(maxsize=2)
def _mnist_test_arrays(data_dir: str) -> tuple[np.ndarray, np.ndarray]:
    from training.data import load_mnist

    images, labels = load_mnist("test", data_dir)
    return images.numpy(), labels.numpy()


@functools.lru_cache(maxsize=2)
def _load_recognizer(path: str):
    from realtime.recognizer import Recognizer

    return Recognizer.load(path)


@pytest.fixture(scope="session")
def mnist_test(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test split as numpy arrays (converted once per session)."""
    return _mnist_test_arrays(str(mnist_dir))


@pytest.fixture(scope="session")
def photos_dir() -> Path:
    """The real photos folder (``digits/labels.csv``, ``sheets/labels.json``)."""
    value = os.environ.get(PHOTOS_ENV)
    if not value:
        pytest.skip(f"{PHOTOS_ENV} is not set: point it at the real photos folder "
                    "(digits/labels.csv and sheets/labels.json)")
    path = Path(value).expanduser()
    if not path.is_dir():
        pytest.fail(f"{PHOTOS_ENV}={value} is not a folder")
    return path


@pytest.fixture(scope="session")
def recognizer():
    """The shipped recognizer, loaded once per session."""
    from realtime.recognizer import default_weights

    path = default_weights()
    if not path.is_file():
        pytest.skip(f"no trained checkpoint at {path}: train one (python -m training) "
                    "or set $DIGITS_WEIGHTS")
    return _load_recognizer(str(path))
