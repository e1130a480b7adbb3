"""One frame's reading as an object that is convenient in a notebook and a web API.

    from realtime import Recognizer
    from realtime.results import recognize
    rec = Recognizer.load()
    result = recognize(rec, "sheet.png")     # a path, a BGR/gray array or a PIL image
    result                                   # Result(3 digits: 4 0 7, numbers ['407'], 4.1 ms)
    result.plot()                            # the annotated image (BGR), shown inline by Jupyter
    result.to_dict()                         # the live JSON line: frame, source, ms, detections, numbers

:func:`recognize` turns whatever it is given into the BGR uint8 frame the recognizer
reads, with a one-line ``TypeError``/``ValueError`` for anything it cannot use.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import cv2
import numpy as np

from realtime.__main__ import frame_record
from realtime.numbers import group_numbers
from realtime.overlay import draw_detections, draw_numbers
from realtime.recognizer import Detection, as_image
from realtime.tracker import Tracker, detect_tracked

# a repr lists this many digits, then "..." (a full sheet would not fit on a line)
REPR_DIGITS = 12
# the digits' probabilities in to_dict(probs=True): the first ten classes (an 11th,
# "not a digit", is the recognizer's business)
DIGIT_CLASSES = 10


class _Detector(Protocol):
    min_confidence: float

    def detect(self, frame: np.ndarray, **kwargs: Any) -> list[Detection]: ...


@dataclass(frozen=True)
class Result:
    """The digits found in one image, their numbers, and how long it took."""

    detections: list[Detection]  # in reading order, as Recognizer.detect returns them
    numbers: list[dict[str, Any]]  # realtime.numbers.group_numbers of the detections
    ms: float  # processing time from the decoded image to the detections
    image: np.ndarray = field(repr=False)  # the BGR uint8 frame that was read
    source: str = ""  # where the image came from (a path, "array", "PIL", an upload's name)
    frame: int = 0  # the frame's index in its source (0 for a single image)

    @property
    def digits(self) -> list[int]:
        """The digits read, in reading order."""
        return [int(d.digit) for d in self.detections]

    @property
    def values(self) -> list[str]:
        """The numbers read, as strings, in reading order."""
        return [str(n["value"]) for n in self.numbers]

    def __len__(self) -> int:
        return len(self.detections)

    def plot(self, confidence: bool = True, rgb: bool = False) -> np.ndarray:
        """The image with boxes, digits (and their confidences) and numbers drawn on it:
        a new BGR uint8 array (``rgb=True``: RGB, as matplotlib's ``imshow`` wants it)."""
        out = draw_numbers(draw_detections(self.image, self.detections, show_confidence=confidence), self.numbers)
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB) if rgb else out

    def to_dict(self, probs: bool = False) -> dict[str, Any]:
        """The live JSON line of this frame (``frame``, ``source``, ``ms``, ``detections``,
        ``numbers``); ``probs=True`` adds each detection's ten digit probabilities."""
        record = frame_record(self.frame, self.source, self.ms, self.detections, self.numbers)
        if probs:
            for out, d in zip(record["detections"], self.detections):
                p = np.zeros(DIGIT_CLASSES) if d.probs is None else np.asarray(d.probs, np.float64)[:DIGIT_CLASSES]
                out["probs"] = [round(float(v), 4) for v in p]
        return record

    def __repr__(self) -> str:
        n = len(self.detections)
        if n == 0:
            return f"Result(no digits, {self.ms:.1f} ms)"
        shown = " ".join(str(d) for d in self.digits[:REPR_DIGITS]) + (" ..." if n > REPR_DIGITS else "")
        values = self.values
        nums = repr(values) if len(values) <= REPR_DIGITS else repr(values[:REPR_DIGITS])[:-1] + ", ...]"
        return f"Result({n} digit{'s' if n != 1 else ''}: {shown}, numbers {nums}, {self.ms:.1f} ms)"

    def _repr_png_(self) -> bytes:
        """Jupyter shows a Result as its annotated image."""
        ok, png = cv2.imencode(".png", self.plot())
        if not ok:  # pragma: no cover - PNG encoding of a uint8 BGR image does not fail
            raise ValueError("cannot encode the annotated image as PNG")
        return png.tobytes()


def decode_image(data: bytes | bytearray | memoryview, name: str = "image") -> np.ndarray:
    """An encoded image file's bytes (PNG, JPEG, BMP, WebP, TIFF, ...) as a BGR uint8 frame.
    Raises ``ValueError`` naming ``name`` when the bytes are empty or not an image."""
    buf = np.frombuffer(data, np.uint8)
    if buf.size == 0:
        raise ValueError(f"{name}: empty file")
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ValueError(f"{name}: not an image OpenCV can decode")
    return as_bgr(img, name)


def as_bgr(image: np.ndarray, name: str = "array") -> np.ndarray:
    """A gray, BGR or BGRA array (as ``realtime.recognizer.as_image`` accepts it) as BGR uint8."""
    image = as_image(image, name)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else np.ascontiguousarray(image)


def _from_pil(image: Any) -> np.ndarray:
    rgb = np.asarray(image.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _is_pil(image: Any) -> bool:
    return any(c.__module__.startswith("PIL.") and c.__name__ == "Image" for c in type(image).__mro__)


def load_image(image_or_path: Any) -> tuple[np.ndarray, str]:
    """``(BGR uint8 frame, source label)`` of a numpy array, a path (str/Path) or a PIL image."""
    x = image_or_path
    if isinstance(x, np.ndarray):
        return as_bgr(x), "array"
    if isinstance(x, (str, os.PathLike)):
        path = Path(x)
        if not path.is_file():
            raise ValueError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
        return decode_image(path.read_bytes(), str(path)), str(path)
    if _is_pil(x):
        return _from_pil(x), "PIL"
    raise TypeError(f"expected a numpy array (BGR or gray), a path or a PIL image, not {type(x).__name__}")


def recognize(rec: _Detector, image_or_path: Any, *, tracker: Tracker | None = None,
              source: str | None = None, frame: int = 0) -> Result:
    """Read the digits of one image with ``rec`` (a ``Recognizer``).

    ``image_or_path``: a BGR or gray numpy array, a path (str/Path) to an image file or a
    PIL image. ``tracker``: steady the labels over a sequence of frames as the live view
    does (the tracker applies the confidence threshold after smoothing). ``source`` and
    ``frame`` label the result (default: the path, ``"array"`` or ``"PIL"``; 0).
    Raises ``TypeError`` for an unsupported kind of input and ``ValueError`` for a
    missing, empty or undecodable image.
    """
    image, label = load_image(image_or_path)
    t0 = time.perf_counter()
    dets = detect_tracked(rec, image, tracker)
    ms = (time.perf_counter() - t0) * 1000.0
    return Result(detections=list(dets), numbers=group_numbers(dets), ms=ms, image=image,
                  source=label if source is None else source, frame=int(frame))


def results_jsonl(results: Sequence[Result]) -> str:
    """Results as JSON lines (one line per frame, the live CLI's ``--json`` format)."""
    return "".join(json.dumps(r.to_dict()) + "\n" for r in results)


__all__ = ["Result", "recognize", "load_image", "decode_image", "as_bgr", "results_jsonl"]
