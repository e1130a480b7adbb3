"""Shared pytest fixtures: where the repository and the offline MNIST copy are, and the
numpy/OpenCV route of the pipeline's compiled kernels."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, ContextManager, Iterator

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


@pytest.fixture
def numpy_route() -> Callable[[], ContextManager[None]]:
    """``with numpy_route(): ...`` runs the pipeline without its numba kernels (the
    numpy/OpenCV code they replace), to compare the two routes' outputs."""
    from realtime import native

    @contextlib.contextmanager
    def route() -> Iterator[None]:
        before = native.ENABLED
        native.ENABLED = False
        native.compiled.cache_clear()
        try:
            yield
        finally:
            native.ENABLED = before
            native.compiled.cache_clear()

    return route
