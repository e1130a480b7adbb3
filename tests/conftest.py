"""Shared pytest fixtures: the repository, the data folders, the shipped recognizer.

The heavy objects (MNIST test arrays, the loaded recognizer) are loaded once per session.

- ``repo_root``: the repository root, for subprocess ``cwd``;
- ``mnist_dir`` / ``mnist_test``: ``$MNIST_DIR`` and its test split as numpy arrays
  (tests that need them skip when it is unset);
- ``photos_dir`` / ``real_dir``: the real photo folders ``$PHOTOS_DIR`` / ``$REAL_DIR``
  (skip when unset; fail when set to something that is not a folder: a broken setup);
- ``recognizer``: ``Recognizer.load()`` of the shipped checkpoints;
- ``synthetic_digits`` / ``synthetic_mnist_dir``: printed digits in MNIST's field, as
  arrays and as an MNIST-shaped folder of IDX files, for tests (the trainers') that
  must run without MNIST.
"""

from __future__ import annotations

import functools
import gzip
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


# OpenCV's stroke fonts (tests only: training never draws with them) and pens
_FONTS = (0, 2, 3, 4, 6, 7)  # FONT_HERSHEY_SIMPLEX, DUPLEX, COMPLEX, TRIPLEX, SCRIPT_SIMPLEX, SCRIPT_COMPLEX


def _synthetic_variants(per_class: int, seed: int) -> np.ndarray:
    """uint8 [10, per_class, 28, 28]: each digit drawn in a random font, pen, slant and
    size at 4x, then put in MNIST's field by the recognizer's own recipe."""
    import cv2

    from training.fields import to_mnist

    rng = np.random.default_rng(seed)
    out = np.zeros((10, per_class, 28, 28), np.uint8)
    for d in range(10):
        for i in range(per_class):
            canvas = np.zeros((128, 128), np.uint8)
            scale = rng.uniform(2.4, 3.4)
            cv2.putText(canvas, str(d), (24, 104), int(rng.choice(_FONTS)), scale, 255, int(rng.integers(5, 12)),
                        cv2.LINE_AA)
            shear = rng.uniform(-0.3, 0.1)
            m = np.float32([[1, shear, -shear * 64], [0, 1, 0]])
            canvas = cv2.warpAffine(canvas, m, (128, 128))
            out[d, i] = np.clip(to_mnist(canvas, canvas > 12) * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


def _synthetic_split(variants: np.ndarray, counts: list[int], rng: np.random.Generator,
                     ) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.permutation(np.repeat(np.arange(10), counts)).astype(np.uint8)
    images = variants[labels, rng.integers(0, variants.shape[1], len(labels))]
    # a pixel of play either way, as MNIST's centring has
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            pick = rng.random(len(images)) < 1 / 9
            images[pick] = np.roll(images[pick], (dy, dx), axis=(1, 2))
    return images, labels


def _write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = magic.to_bytes(4, "big") + len(array).to_bytes(4, "big")
    if array.ndim == 3:
        header += array.shape[1].to_bytes(4, "big") + array.shape[2].to_bytes(4, "big")
    path.write_bytes(gzip.compress(header + array.tobytes(), compresslevel=1))


@pytest.fixture(scope="session")
def synthetic_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [2000, 28, 28], labels int64 [2000])``: printed digits in
    MNIST's field (200 per class, in random order), for fast tests without MNIST."""
    variants = _synthetic_variants(40, seed=1)
    images, labels = _synthetic_split(variants, [200] * 10, np.random.default_rng(2))
    return images, labels.astype(np.int64)


@pytest.fixture(scope="session")
def synthetic_mnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of the four MNIST IDX files holding printed digits instead of MNIST's
    (MNIST's sizes and per-class counts, so ``training.data.load_mnist`` takes it):
    trainers run end to end on it without ``$MNIST_DIR``. Easy digits: a few hundred
    steps read them almost all."""
    from training.data import CLASS_COUNTS, FILES

    root = tmp_path_factory.mktemp("synthetic_mnist")
    variants = _synthetic_variants(40, seed=3)
    rng = np.random.default_rng(4)
    for split, (img_name, lbl_name, _) in FILES.items():
        images, labels = _synthetic_split(variants, CLASS_COUNTS[split], rng)
        _write_idx(root / img_name, images, 2051)
        _write_idx(root / lbl_name, labels, 2049)
    return root
