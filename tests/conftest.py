"""Shared pytest fixtures: where the repository and the offline MNIST copy are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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
