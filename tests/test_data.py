"""Tests for training.data on the real offline MNIST copy ($MNIST_DIR).

Covers: both splits load with the right sizes, dtypes, label order and official
per-class counts; pixel statistics match the normalization constants the model uses;
every kind of broken folder or file (missing folder, missing file, path that is a
file, truncated gzip, random bytes, wrong IDX magic, wrong item count, swapped files)
raises DataError naming the folder or file; resolve_data_dir's precedence; and the
``python -m training`` CLI turning a bad --data-dir into one ``error:`` line, exit 2.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from training.checkpoint import MNIST_NORMALIZATION
from training.data import DEFAULT_DIR, ENV_VAR, FILES, DataError, load_mnist, resolve_data_dir

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TEST_IMAGES, TEST_LABELS, _ = FILES["test"]
TRAIN_IMAGES, TRAIN_LABELS, _ = FILES["train"]


@pytest.fixture(scope="module")
def train_split(mnist_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    return load_mnist("train", mnist_dir)


@pytest.fixture(scope="module")
def test_split(mnist_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    return load_mnist("test", mnist_dir)


def _folder(tmp_path: Path, mnist_dir: Path, replace: dict[str, bytes] | None = None,
            omit: str | None = None) -> Path:
    """A copy of the MNIST folder (train files linked) with some files replaced or left out."""
    root = tmp_path / "mnist"
    root.mkdir()
    replace = replace or {}
    for name in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS):
        if name == omit:
            continue
        if name in replace:
            (root / name).write_bytes(replace[name])
        elif name.startswith("train"):
            (root / name).symlink_to(mnist_dir / name)
        else:
            shutil.copyfile(mnist_dir / name, root / name)
    return root


def _raw(mnist_dir: Path, name: str) -> bytes:
    return gzip.decompress((mnist_dir / name).read_bytes())


# ---- the real data ------------------------------------------------------------------


def test_train_split_is_mnist(train_split: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = train_split
    assert images.shape == (60000, 28, 28)
    assert images.dtype == torch.uint8
    assert labels.shape == (60000,)
    assert labels.dtype == torch.int64
    assert int(labels.min()) == 0 and int(labels.max()) == 9
    assert torch.bincount(labels, minlength=10).tolist() == TRAIN_COUNTS
    assert labels[:5].tolist() == [5, 0, 4, 1, 9]


def test_test_split_is_mnist(test_split: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = test_split
    assert images.shape == (10000, 28, 28)
    assert images.dtype == torch.uint8
    assert labels.shape == (10000,)
    assert labels.dtype == torch.int64
    assert int(labels.min()) == 0 and int(labels.max()) == 9
    assert torch.bincount(labels, minlength=10).tolist() == TEST_COUNTS


def test_pixels_decode_as_white_ink_on_black(train_split: tuple[torch.Tensor, torch.Tensor],
                                             test_split: tuple[torch.Tensor, torch.Tensor]) -> None:
    """The train pixels reproduce the normalization constants (so not inverted or shifted)."""
    x = train_split[0].float() / 255.0
    assert abs(float(x.mean()) - MNIST_NORMALIZATION["mean"]) < 1e-3
    assert abs(float(x.std()) - MNIST_NORMALIZATION["std"]) < 1e-3
    for images in (train_split[0], test_split[0]):
        assert int(images.min()) == 0 and int(images.max()) == 255
        # borders are background: the digits sit in the centre 20x20 box
        border = torch.cat([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1)
        assert float(border.float().mean()) < 1.0


def test_tensors_are_writable_copies(mnist_dir: Path) -> None:
    images, _ = load_mnist("test", mnist_dir)
    images[0, 0, 0] = 7  # would raise on a read-only numpy buffer
    again, _ = load_mnist("test", mnist_dir)
    assert int(again[0, 0, 0]) == 0


def test_unknown_split_is_rejected(mnist_dir: Path) -> None:
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation", mnist_dir)


# ---- broken folders and files -------------------------------------------------------


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-mnist"
    with pytest.raises(DataError, match="does not exist") as info:
        load_mnist("test", missing)
    assert str(missing) in str(info.value)


def test_path_is_a_file_not_a_folder(tmp_path: Path) -> None:
    f = tmp_path / "mnist.txt"
    f.write_text("not a folder\n")
    with pytest.raises(DataError, match="not a folder") as info:
        load_mnist("test", f)
    assert str(f) in str(info.value)


def test_folder_missing_one_file(tmp_path: Path, mnist_dir: Path) -> None:
    root = _folder(tmp_path, mnist_dir, omit=TEST_LABELS)
    with pytest.raises(DataError) as info:
        load_mnist("test", root)
    msg = str(info.value)
    assert str(root) in msg and TEST_LABELS in msg
    for present in (TEST_IMAGES, TRAIN_IMAGES, TRAIN_LABELS):
        assert present not in msg
    # the train split needs the whole folder too (one check for all four files)
    with pytest.raises(DataError, match=TEST_LABELS):
        load_mnist("train", root)


def test_truncated_gzip(tmp_path: Path, mnist_dir: Path) -> None:
    real = (mnist_dir / TEST_IMAGES).read_bytes()
    root = _folder(tmp_path, mnist_dir, replace={TEST_IMAGES: real[: len(real) // 2]})
    with pytest.raises(DataError, match="not a readable gzip") as info:
        load_mnist("test", root)
    assert str(root / TEST_IMAGES) in str(info.value)


def test_random_bytes(tmp_path: Path, mnist_dir: Path) -> None:
    junk = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    root = _folder(tmp_path, mnist_dir, replace={TEST_LABELS: junk})
    with pytest.raises(DataError, match="not a readable gzip") as info:
        load_mnist("test", root)
    assert str(root / TEST_LABELS) in str(info.value)


def test_wrong_magic_number(tmp_path: Path, mnist_dir: Path) -> None:
    raw = bytearray(_raw(mnist_dir, TEST_IMAGES))
    raw[0:4] = (1234).to_bytes(4, "big")
    root = _folder(tmp_path, mnist_dir, replace={TEST_IMAGES: gzip.compress(bytes(raw), compresslevel=1)})
    with pytest.raises(DataError, match="magic number 1234") as info:
        load_mnist("test", root)
    assert str(root / TEST_IMAGES) in str(info.value)


def test_swapped_files_fail_on_magic(tmp_path: Path, mnist_dir: Path) -> None:
    """Labels stored under the images name (and vice versa) are caught by the magic."""
    images = (mnist_dir / TEST_IMAGES).read_bytes()
    labels = (mnist_dir / TEST_LABELS).read_bytes()
    root = _folder(tmp_path, mnist_dir, replace={TEST_IMAGES: labels, TEST_LABELS: images})
    with pytest.raises(DataError, match="magic number") as info:
        load_mnist("test", root)
    assert str(root / TEST_IMAGES) in str(info.value)


def test_wrong_item_count(tmp_path: Path, mnist_dir: Path) -> None:
    """A consistent IDX file that holds one image too few."""
    raw = bytearray(_raw(mnist_dir, TEST_IMAGES))
    raw[4:8] = (9999).to_bytes(4, "big")
    short = bytes(raw[: 16 + 9999 * 28 * 28])
    root = _folder(tmp_path, mnist_dir, replace={TEST_IMAGES: gzip.compress(short, compresslevel=1)})
    with pytest.raises(DataError, match="holds 9999 items, expected 10000") as info:
        load_mnist("test", root)
    assert str(root / TEST_IMAGES) in str(info.value)


def test_truncated_content_in_valid_gzip(tmp_path: Path, mnist_dir: Path) -> None:
    """Header says 10,000 labels but the (well-formed) gzip holds fewer bytes."""
    raw = _raw(mnist_dir, TEST_LABELS)
    root = _folder(tmp_path, mnist_dir, replace={TEST_LABELS: gzip.compress(raw[:-10])})
    with pytest.raises(DataError, match="truncated") as info:
        load_mnist("test", root)
    assert str(root / TEST_LABELS) in str(info.value)


def test_shuffled_labels_fail_count_check(tmp_path: Path, mnist_dir: Path) -> None:
    """Labels with the right structure but not MNIST's distribution are rejected."""
    raw = bytearray(_raw(mnist_dir, TEST_LABELS))
    raw[8:] = bytes(i % 10 for i in range(10000))
    root = _folder(tmp_path, mnist_dir, replace={TEST_LABELS: gzip.compress(bytes(raw), compresslevel=1)})
    with pytest.raises(DataError, match="per-class counts") as info:
        load_mnist("test", root)
    assert str(root / TEST_LABELS) in str(info.value)


# ---- which folder -------------------------------------------------------------------


def test_resolve_data_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arg, env = tmp_path / "from-arg", tmp_path / "from-env"
    monkeypatch.setenv(ENV_VAR, str(env))
    assert resolve_data_dir(arg) == arg
    assert resolve_data_dir(str(arg)) == arg
    assert resolve_data_dir(None) == env
    monkeypatch.delenv(ENV_VAR)
    assert resolve_data_dir(None) == DEFAULT_DIR
    assert resolve_data_dir(arg) == arg


def test_load_mnist_uses_env_var(mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(mnist_dir))
    _, labels = load_mnist("test")
    assert torch.bincount(labels, minlength=10).tolist() == TEST_COUNTS
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere"))
    with pytest.raises(DataError, match="elsewhere"):
        load_mnist("test")
    # the argument still wins over the (now wrong) variable
    assert load_mnist("test", mnist_dir)[1].shape == (10000,)


# ---- the CLI ------------------------------------------------------------------------


def test_cli_bad_data_dir_is_one_error_line(tmp_path: Path, repo_root: Path) -> None:
    bad = tmp_path / "no-mnist-here"
    proc = subprocess.run(
        [sys.executable, "-m", "training", "--data-dir", str(bad), "--out", str(tmp_path / "run"),
         "--epochs", "1", "--no-progress"],
        cwd=repo_root, capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:")
    assert str(bad) in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "run").exists()
