"""Everything that runs live: frame sources, segmentation, MNIST-style normalization,
the batched recognizer, overlay and sinks.

    from realtime import Recognizer
    rec = Recognizer.load()
    detections = rec.detect(frame_bgr)
"""

from realtime.recognizer import Detection, Recognizer

__all__ = ["Recognizer", "Detection"]
