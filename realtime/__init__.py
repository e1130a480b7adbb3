"""Everything that runs live: frame sources, segmentation, MNIST-style normalization,
the batched recognizer, overlay and sinks.

    from realtime import Recognizer
    rec = Recognizer.load()
    detections = rec.detect(frame_bgr)

``Recognizer`` and ``Detection`` are imported on first use, so that ``python -m
realtime`` can check its arguments, source and outputs before the models' libraries
load (a bad ``--source`` is reported in well under a second).
"""

from typing import Any

__all__ = ["Recognizer", "Detection"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from realtime import recognizer

        return getattr(recognizer, name)
    raise AttributeError(f"module 'realtime' has no attribute {name!r}")
