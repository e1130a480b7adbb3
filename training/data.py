"""MNIST from the four standard IDX ``.gz`` files: find, download when allowed, load.

The whole split is decoded once into in-memory tensors (60,000 x 28 x 28 uint8 is
47 MB), so training never touches Python per sample.

The folder comes from ``--data-dir`` or the ``MNIST_DIR`` environment variable.
Files are validated by their IDX structure (magic number, dimensions, counts), not by
md5, because the offline copy's train images are a faithful rebuild whose checksum
differs from the official file. Downloads go through torchvision's helpers, which do
check the official md5 of what they fetch.
"""

from __future__ import annotations

import gzip
import logging
import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

ENV_VAR = "MNIST_DIR"
DEFAULT_DIR = Path.home() / ".cache" / "realtime-digits" / "mnist"

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}

# Official per-class counts: a cheap check that labels are complete and in order.
CLASS_COUNTS = {
    "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}

_IMAGE_MAGIC = 2051
_LABEL_MAGIC = 2049


class DataError(Exception):
    """The MNIST folder is missing, incomplete or corrupt (message names which)."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder to read: the argument, else ``$MNIST_DIR``, else the user cache."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return DEFAULT_DIR


def _missing(root: Path) -> list[str]:
    names = [n for imgs, lbls, _ in FILES.values() for n in (imgs, lbls)]
    return [n for n in names if not (root / n).is_file()]


def download_mnist(root: Path) -> None:
    """Fetch the missing official files with torchvision's mirrors and md5 checks."""
    from torchvision.datasets import MNIST
    from torchvision.datasets.utils import download_url

    root.mkdir(parents=True, exist_ok=True)
    md5s = dict(MNIST.resources)
    for name in _missing(root):
        last_err: Exception | None = None
        for mirror in MNIST.mirrors:
            try:
                log.info("downloading %s from %s", name, mirror)
                download_url(mirror + name, str(root), filename=name, md5=md5s.get(name))
                last_err = None
                break
            except Exception as err:  # noqa: BLE001 - try the next mirror
                last_err = err
        if last_err is not None:
            raise DataError(f"{root}: could not download {name} ({last_err})")


def _read_idx(path: Path, magic: int, count: int) -> np.ndarray:
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: not a readable gzip file ({err})") from err
    if len(raw) < 8:
        raise DataError(f"{path}: file is truncated")
    got_magic = int.from_bytes(raw[0:4], "big")
    if got_magic != magic:
        raise DataError(f"{path}: bad IDX magic number {got_magic}, expected {magic}")
    n = int.from_bytes(raw[4:8], "big")
    if n != count:
        raise DataError(f"{path}: holds {n} items, expected {count}")
    if magic == _IMAGE_MAGIC:
        rows, cols = int.from_bytes(raw[8:12], "big"), int.from_bytes(raw[12:16], "big")
        if (rows, cols) != (28, 28):
            raise DataError(f"{path}: images are {rows}x{cols}, expected 28x28")
        body, shape = raw[16:], (n, 28, 28)
    else:
        body, shape = raw[8:], (n,)
    need = int(np.prod(shape))
    if len(body) != need:
        raise DataError(f"{path}: truncated or padded ({len(body)} bytes of data, expected {need})")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def load_mnist(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split as ``(images uint8 [N, 28, 28], labels int64 [N])``.

    Raises :class:`DataError` with a one-line message naming the folder and the problem.
    """
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = resolve_data_dir(data_dir)
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: is not a folder")
    missing = _missing(root)
    if missing:
        if download:
            download_mnist(root)
        else:
            where = "does not exist" if not root.exists() else f"lacks {', '.join(missing)}"
            raise DataError(
                f"MNIST folder {root} {where} (set --data-dir or ${ENV_VAR}, or allow download)"
            )
    img_name, lbl_name, count = FILES[split]
    images = _read_idx(root / img_name, _IMAGE_MAGIC, count)
    labels = _read_idx(root / lbl_name, _LABEL_MAGIC, count)
    if labels.max() > 9:
        raise DataError(f"{root / lbl_name}: labels outside 0-9")
    counts = np.bincount(labels, minlength=10).tolist()
    if counts != CLASS_COUNTS[split]:
        raise DataError(f"{root / lbl_name}: per-class counts {counts} are not MNIST's")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def read_npz(path: str | os.PathLike, kind: str, keys: Sequence[str], optional: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an ``.npz`` (and those of ``optional`` it holds), for the
    files the miners write (``kind``: what the file is, for the messages). Raises
    :class:`DataError` when it is missing, truncated, corrupt or lacks a key."""
    path = Path(path).expanduser()
    try:
        with np.load(path) as z:
            arrays = {k: np.asarray(z[k]) for k in keys}
            arrays.update({k: np.asarray(z[k]) for k in optional if k in z.files})
    except FileNotFoundError as err:
        raise DataError(f"{path}: {kind} file does not exist") from err
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, zlib.error, EOFError) as err:
        names = [repr(k) for k in keys]
        wanted = " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]
        raise DataError(f"{path}: not a {kind} .npz with {wanted} ({err})") from err
    return arrays


def load_scene_crops(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Extra training crops written by ``python -m benchmarks.scene_crops``: MNIST
    *training* digits rendered on paper and cut out by the live pipeline. Returns
    ``(images uint8 [N, 28, 28], labels int64 [N], negatives uint8 [M, 28, 28] or None)``
    (negatives: pieces of digits and merged digits); raises :class:`DataError`."""
    path = Path(path).expanduser()
    z = read_npz(path, "scene-crops", ("images", "labels"), optional=("negatives",))
    images, labels, negatives = z["images"], z["labels"], z.get("negatives")
    for name, arr in (("images", images), ("negatives", negatives)):
        if arr is not None and (arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[1:] != (28, 28)):
            raise DataError(f"{path}: {name} must be uint8 [count, 28, 28], not {arr.dtype} {list(arr.shape)}")
    if labels.shape != (len(images),) or len(images) == 0:
        raise DataError(f"{path}: needs one label per image and at least one image")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: labels outside 0-9")
    neg = torch.from_numpy(negatives.copy()) if negatives is not None and len(negatives) else None
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)), neg
