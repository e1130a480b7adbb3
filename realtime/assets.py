"""Where the shipped networks live: checkpoints, ONNX graphs, the model card, the demo clip.

In a source checkout (and an editable install) they are the repository's ``assets/``;
``pip install .`` installs the same files as the package data ``realtime/_assets``
(pyproject.toml maps that package onto ``assets/``), so an installed copy finds them
beside its code. The installed location is looked at first: only this distribution
writes there, while a ``site-packages/assets`` could be anyone's.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ASSETS", "CHECKOUT_ASSETS", "INSTALLED_ASSETS", "assets_dir"]

INSTALLED_ASSETS = Path(__file__).resolve().parent / "_assets"
CHECKOUT_ASSETS = Path(__file__).resolve().parent.parent / "assets"


def assets_dir() -> Path:
    """The installed package data when it is there, else the checkout's ``assets/``."""
    return INSTALLED_ASSETS if INSTALLED_ASSETS.is_dir() else CHECKOUT_ASSETS


ASSETS = assets_dir()
