"""Drawing on frames: digit boxes and labels, numbers, and the status line.

Labels are laid out before anything is drawn (:func:`layout`): sized to the frame and
its digits, each tried above, below, beside and inside its box, at full size with its
confidence, then without the percentage, then smaller, and dropped only when no place
is left. No label overlaps another label or the status bar, and a label keeps off
other digits where any place allows it; boxes are drawn first, labels over them, so a
number's box never cuts through a label.

Pure functions: each returns a new annotated image and leaves its input untouched, so
the same frame can be recorded, shown and snapshotted without surprises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
Rect = tuple[int, int, int, int]  # x, y, w, h

# Hershey simplex capitals are ~22 px tall at scale 1.
_PX_PER_SCALE = 22.0
# A label's text is about this fraction of the median digit's height, kept between
# these fractions of the frame's short side (a 410x594 sheet gets 10-27 px text, not 9).
LABEL_OF_DIGIT = 0.4
LABEL_MIN_OF_FRAME = 1 / 45
LABEL_MAX_OF_FRAME = 1 / 15
# Sizes tried when a label does not fit, as fractions of its first size.
SHRINK = (1.0, 0.8, 0.65, 0.5)
PAD = 2  # pixels of filled background around a label's text
NUMBER_COLOUR = (255, 120, 0)
NUMBER_LABEL_COLOUR = (255, 200, 120)


@dataclass(frozen=True)
class Label:
    """One placed label: its rectangle in frame pixels and how it is drawn."""

    rect: Rect
    text: str
    scale: float
    thickness: int
    colour: tuple[int, int, int]
    kind: str  # "digit" or "number"
    index: int  # into the detections, or the numbers


@dataclass(frozen=True)
class Layout:
    labels: list[Label]
    status: Rect | None  # the status bar's rectangle
    dropped: int  # labels no place was left for


def _conf_colour(conf: float) -> tuple[int, int, int]:
    # green when sure, amber when unsure: BGR
    if conf >= 0.9:
        return (60, 200, 40)
    if conf >= 0.7:
        return (0, 200, 230)
    return (0, 140, 255)


def _thickness(scale: float) -> int:
    return 2 if scale >= 0.9 else 1


def _text_rect(text: str, scale: float) -> tuple[int, int, int]:
    """(width, height, baseline) of a label's filled rectangle."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, _thickness(scale))
    return tw + 2 * PAD, th + base + 2 * PAD, base


def label_scale(frame_shape: Sequence[int], boxes: Sequence[Sequence[float]]) -> float:
    """Font scale for digit labels: a fraction of the median digit height, within
    bounds set by the frame's short side."""
    short = float(min(frame_shape[:2]))
    target = short / 30
    if len(boxes):
        target = LABEL_OF_DIGIT * float(np.median([b[3] for b in boxes]))
    target = min(max(target, short * LABEL_MIN_OF_FRAME), short * LABEL_MAX_OF_FRAME)
    return max(0.3, target / _PX_PER_SCALE)


def status_scale(frame_shape: Sequence[int]) -> float:
    return max(0.45, min(frame_shape[:2]) / 800)


def status_text(fps: float | None, ms: float | None, n_digits: int, paused: bool = False,
                extra: str = "", latency_ms: float | None = None) -> str:
    """``processing FPS, ms per frame, latency, digits``: the rate the pipeline reads
    frames at (not the window's refresh rate) and how old a shown result is."""
    parts = []
    if fps is not None:
        parts.append(f"{fps:5.1f} FPS")
    if ms is not None:
        parts.append(f"{ms:5.1f} ms")
    if latency_ms is not None:
        parts.append(f"latency {latency_ms:4.0f} ms")
    parts.append(f"{n_digits} digits")
    if paused:
        parts.append("PAUSED (space)")
    if extra:
        parts.append(extra)
    return "  ".join(parts)


def _status_rect(frame_shape: Sequence[int], text: str) -> Rect:
    scale = status_scale(frame_shape)
    (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
    return (0, 0, min(int(frame_shape[1]), tw + 10), th + base + 10)


class _Grid:
    """Rectangles bucketed by cell, so a dense page's overlap tests stay local."""

    def __init__(self, cell: int) -> None:
        self.cell = max(8, int(cell))
        self.cells: dict[tuple[int, int], list[Rect]] = {}

    def _keys(self, r: Rect) -> Iterable[tuple[int, int]]:
        c = self.cell
        for gx in range(r[0] // c, (r[0] + max(r[2], 1) - 1) // c + 1):
            for gy in range(r[1] // c, (r[1] + max(r[3], 1) - 1) // c + 1):
                yield gx, gy

    def add(self, r: Rect) -> None:
        for k in self._keys(r):
            self.cells.setdefault(k, []).append(r)

    def hits(self, r: Rect, ignore: Rect | None = None) -> bool:
        for k in self._keys(r):
            for o in self.cells.get(k, ()):
                if o is not ignore and o != ignore and _overlap(r, o):
                    return True
        return False


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _positions(box: Rect, lw: int, lh: int, frame_w: int, frame_h: int, inside: bool) -> Iterable[Rect]:
    """Where a label of lw x lh may go around ``box``, best first, inside the frame."""
    x, y, w, h = box
    cx = lambda v: min(max(0, v), frame_w - lw)  # noqa: E731 - slide along the edge into the frame
    cy = lambda v: min(max(0, v), frame_h - lh)  # noqa: E731
    mid = x + (w - lw) // 2
    cands = [(cx(x), y - lh - 1), (cx(x + w - lw), y - lh - 1), (cx(mid), y - lh - 1),
             (cx(x), y + h + 1), (cx(x + w - lw), y + h + 1), (cx(mid), y + h + 1),
             (x + w + 1, cy(y)), (x - lw - 1, cy(y)), (x + w + 1, cy(y + h - lh)), (x - lw - 1, cy(y + h - lh))]
    if inside:
        cands += [(cx(x), cy(y)), (cx(x), cy(y + h - lh)), (cx(x + w - lw), cy(y)), (cx(x + w - lw), cy(y + h - lh))]
    for px, py in cands:
        if 0 <= px and 0 <= py and px + lw <= frame_w and py + lh <= frame_h:
            yield (int(px), int(py), int(lw), int(lh))


def _place(box: Rect, options: Sequence[tuple[str, float]], labels: _Grid, boxes: _Grid | None,
           frame_w: int, frame_h: int, inside: bool) -> tuple[Rect, str, float] | None:
    for text, scale in options:
        lw, lh, _ = _text_rect(text, scale)
        for r in _positions(box, lw, lh, frame_w, frame_h, inside):
            if labels.hits(r):
                continue
            if boxes is not None and boxes.hits(r, ignore=box if not inside else None):
                continue
            return r, text, scale
    return None


def layout(frame_shape: Sequence[int], detections: Sequence[Any], numbers: Sequence[dict[str, Any]] = (),
           status: str | None = None, show_confidence: bool = True) -> Layout:
    """Place every digit's label, then every multi-digit number's value, greedily in
    reading order: first where it covers no other digit, else (digits only) anywhere
    it covers no label and not the status bar; each at its full text and size, then
    shorter and smaller (see :data:`SHRINK`)."""
    fh, fw = int(frame_shape[0]), int(frame_shape[1])
    boxes = [tuple(int(v) for v in d.box) for d in detections]
    scale = label_scale(frame_shape, boxes)
    cell = int(2 * scale * _PX_PER_SCALE) + 8
    placed, taken, covered = [], _Grid(cell), _Grid(cell)
    for b in boxes:
        covered.add(b)
    status_rect = _status_rect(frame_shape, status) if status else None
    if status_rect is not None:
        taken.add(status_rect)
    jobs: list[tuple[str, int, Rect, list[str], tuple[int, int, int]]] = []
    for i, d in enumerate(detections):
        texts = [f"{d.digit} {int(round(100 * d.confidence))}%", f"{d.digit}"] if show_confidence else [f"{d.digit}"]
        jobs.append(("digit", i, boxes[i], texts, _conf_colour(float(d.confidence))))
    for k, num in enumerate(numbers):
        if len(num["digits"]) >= 2:
            nb = tuple(int(v) for v in num["box"])
            jobs.append(("number", k, (nb[0] - 3, nb[1] - 3, nb[2] + 6, nb[3] + 6), [str(num["value"])],
                         NUMBER_LABEL_COLOUR))
    dropped = 0
    for kind, i, box, texts, colour in jobs:
        # the percentage goes before the size does: a digit at full size reads better
        options = [(t, scale * f) for f in SHRINK for t in texts]
        spot = _place(box, options, taken, covered, fw, fh, inside=False)
        if spot is None and kind == "digit":  # a number's value never hides digits: they are labelled
            spot = _place(box, options, taken, None, fw, fh, inside=True)
        if spot is None:
            dropped += 1
            continue
        rect, text, s = spot
        taken.add(rect)
        placed.append(Label(rect, text, s, _thickness(s), colour, kind, i))
    return Layout(placed, status_rect, dropped)


def _draw_label(img: np.ndarray, lab: Label) -> None:
    x, y, w, h = lab.rect
    _, _, base = _text_rect(lab.text, lab.scale)
    cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), lab.colour, -1)
    cv2.putText(img, lab.text, (x + PAD, y + h - PAD - base), FONT, lab.scale, (0, 0, 0), lab.thickness,
                cv2.LINE_AA)


def _draw_boxes(img: np.ndarray, detections: Sequence[Any], numbers: Sequence[dict[str, Any]]) -> None:
    line = 2 if min(img.shape[:2]) >= 600 else 1
    for num in numbers:
        if len(num["digits"]) >= 2:
            x, y, w, h = (int(v) for v in num["box"])
            cv2.rectangle(img, (x - 3, y - 3), (x + w + 3, y + h + 3), NUMBER_COLOUR, 1)
    for d in detections:
        x, y, w, h = (int(v) for v in d.box)
        cv2.rectangle(img, (x, y), (x + w, y + h), _conf_colour(float(d.confidence)), line)


def _draw_status_bar(img: np.ndarray, text: str) -> None:
    scale = status_scale(img.shape)
    x, y, w, h = _status_rect(img.shape, text)
    (_, th), _ = cv2.getTextSize(text, FONT, scale, 1)
    cv2.rectangle(img, (x, y), (x + w, y + h), (0, 0, 0), -1)
    cv2.putText(img, text, (5, th + 5), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _bgr_copy(frame: np.ndarray) -> np.ndarray:
    return frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def draw_frame(frame: np.ndarray, detections: Sequence[Any], numbers: Sequence[dict[str, Any]] = (),
               status: str | None = None, show_confidence: bool = True) -> np.ndarray:
    """Everything at once: boxes, then the labels of :func:`layout`, then the status bar
    (``status``: a :func:`status_text` line, or None for none)."""
    out = _bgr_copy(frame)
    _draw_boxes(out, detections, numbers)
    for lab in layout(out.shape, detections, numbers, status, show_confidence).labels:
        _draw_label(out, lab)
    if status:
        _draw_status_bar(out, status)
    return out


def draw_detections(frame: np.ndarray, detections: Sequence[Any], show_confidence: bool = True) -> np.ndarray:
    """Boxes and ``digit (confidence)`` labels; detections need ``box``, ``digit``, ``confidence``."""
    return draw_frame(frame, detections, (), None, show_confidence)


def draw_numbers(frame: np.ndarray, numbers: Sequence[dict[str, Any]]) -> np.ndarray:
    """Each multi-digit number's box and value (single digits are labelled already)."""
    return draw_frame(frame, (), numbers)


def draw_status(frame: np.ndarray, fps: float | None, ms: float | None, n_digits: int,
                paused: bool = False, extra: str = "", latency_ms: float | None = None) -> np.ndarray:
    """The status line in the top-left corner (see :func:`status_text`)."""
    out = _bgr_copy(frame)
    _draw_status_bar(out, status_text(fps, ms, n_digits, paused, extra, latency_ms))
    return out
