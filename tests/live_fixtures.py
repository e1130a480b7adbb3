"""The shared fixtures, for test modules that still import them by name (they live in
``tests/conftest.py``, which pytest finds on its own)."""

from tests.conftest import mnist_test, photos_dir, real_dir, recognizer

__all__ = ["mnist_test", "photos_dir", "real_dir", "recognizer"]
