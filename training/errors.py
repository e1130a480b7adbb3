"""The errors a checkpoint or a graph file is refused with (no torch needed to catch them).

The live view loads graphs without PyTorch installed, so what it catches lives here,
apart from :mod:`training.checkpoint`, which needs torch.
"""

from __future__ import annotations


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable, foreign, damaged or does not match the code.

    ``str(err)`` is one line per problem found, each naming the file."""


class GraphError(CheckpointError):
    """An ONNX graph file is missing, unreadable, of the wrong kind, damaged or lacks
    what the live view needs to run it."""
