"""Drawing on frames: digit boxes and labels, numbers, and the status line (FPS, ms).

Pure functions: each returns a new annotated image and leaves its input untouched, so
the same frame can be recorded, shown and snapshotted without surprises.
"""

from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX


def _conf_colour(conf: float) -> tuple[int, int, int]:
    # green when sure, amber when unsure: BGR
    if conf >= 0.9:
        return (60, 200, 40)
    if conf >= 0.7:
        return (0, 200, 230)
    return (0, 140, 255)


def _label(img: np.ndarray, text: str, x: int, y: int, scale: float, colour: tuple[int, int, int],
           thickness: int = 1) -> None:
    """Text on a filled box (readable on any paper), placed above (x, y) or below if no room."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    top = y - th - base - 2
    if top < 0:
        top = y + 2
    x = max(0, min(x, img.shape[1] - tw - 2))
    cv2.rectangle(img, (x, top), (x + tw + 2, top + th + base + 2), colour, -1)
    cv2.putText(img, text, (x + 1, top + th + 1), FONT, scale, (0, 0, 0), thickness, cv2.LINE_AA)


def draw_detections(frame: np.ndarray, detections: Sequence[Any], show_confidence: bool = True) -> np.ndarray:
    """Boxes and ``digit (confidence)`` labels; detections need ``box``, ``digit``, ``confidence``."""
    out = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    scale = max(0.4, min(out.shape[:2]) / 900)
    for d in detections:
        x, y, w, h = (int(v) for v in d.box)
        colour = _conf_colour(float(d.confidence))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2 if scale > 0.6 else 1)
        text = f"{d.digit} {int(round(100 * d.confidence))}%" if show_confidence else f"{d.digit}"
        if cv2.getTextSize(text, FONT, scale, 1)[0][0] > w + 8:
            text = f"{d.digit}"  # dense rows: labels wider than their digit would collide
        _label(out, text, x, y, scale, colour)
    return out


def draw_numbers(frame: np.ndarray, numbers: Sequence[dict[str, Any]]) -> np.ndarray:
    """Each multi-digit number's value below its box (single digits are labelled already)."""
    out = frame.copy()
    scale = max(0.5, min(out.shape[:2]) / 700)
    for num in numbers:
        if len(num["digits"]) < 2:
            continue
        x, y, w, h = (int(v) for v in num["box"])
        cv2.rectangle(out, (x - 3, y - 3), (x + w + 3, y + h + 3), (255, 120, 0), 1)
        _label(out, num["value"], x, y + h + int(30 * scale), scale, (255, 200, 120), 2 if scale > 0.8 else 1)
    return out


def draw_status(frame: np.ndarray, fps: float | None, ms: float | None, n_digits: int,
                paused: bool = False, extra: str = "") -> np.ndarray:
    """A status line in the top-left corner: FPS, processing ms, digits found."""
    out = frame.copy()
    parts = []
    if fps is not None:
        parts.append(f"{fps:5.1f} FPS")
    if ms is not None:
        parts.append(f"{ms:5.1f} ms")
    parts.append(f"{n_digits} digits")
    if paused:
        parts.append("PAUSED (space)")
    if extra:
        parts.append(extra)
    text = "  ".join(parts)
    scale = max(0.45, min(out.shape[:2]) / 1000)
    (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
    cv2.rectangle(out, (0, 0), (tw + 10, th + base + 10), (0, 0, 0), -1)
    cv2.putText(out, text, (5, th + 5), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
