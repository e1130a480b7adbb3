"""Synthetic digit frames for tests that need no dataset: Hershey-font digits on paper.

OpenCV's Hershey fonts draw digits as single pen strokes, much like handwriting with a
ballpoint or a marker; the shipped digit network reads them (every digit of the simplex,
duplex, complex and script faces at 2-4 px strokes). Each drawn digit's truth box is
measured from its own ink, so a test knows exactly where every digit is.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FONTS = {
    "simplex": cv2.FONT_HERSHEY_SIMPLEX,
    "duplex": cv2.FONT_HERSHEY_DUPLEX,
    "complex": cv2.FONT_HERSHEY_COMPLEX,
    "script": cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
}


@dataclass(frozen=True)
class Glyph:
    """A drawn digit: its label and its ink's box (x, y, w, h) in the frame."""

    label: int
    box: tuple[int, int, int, int]


def paper(width: int = 640, height: int = 480, tone: int = 232, noise: float = 2.0, seed: int = 0) -> np.ndarray:
    """A BGR sheet of paper: a slightly warm tone with a little sensor noise."""
    rng = np.random.default_rng(seed)
    img = np.empty((height, width, 3), np.float32)
    img[:] = (tone - 6, tone - 2, tone)
    img += rng.normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write(img: np.ndarray, text: str, x: int, y: int, height: int = 48, thickness: int = 3, font: str = "simplex",
          colour: tuple[int, int, int] = (40, 35, 30), gap: float = 0.35) -> list[Glyph]:
    """Draw ``text`` (digits and spaces) on ``img`` in place, its baseline at ``y``, each
    digit about ``height`` px tall and ``gap`` heights from the next; the glyphs drawn."""
    face = FONTS[font]
    scale = cv2.getFontScaleFromHeight(face, height, thickness)
    out: list[Glyph] = []
    cx = x
    for ch in text:
        (tw, _), _ = cv2.getTextSize(ch if ch != " " else "0", face, scale, thickness)
        if ch != " ":
            mask = np.zeros(img.shape[:2], np.uint8)
            cv2.putText(mask, ch, (cx, y), face, scale, 255, thickness, cv2.LINE_AA)
            cv2.putText(img, ch, (cx, y), face, scale, colour, thickness, cv2.LINE_AA)
            bx, by, bw, bh = cv2.boundingRect((mask > 100).astype(np.uint8))
            out.append(Glyph(int(ch), (bx, by, bw, bh)))
        cx += int(tw + gap * height)
    return out


def sheet_of_rows(rows: list[str], width: int = 640, height: int = 480, digit_px: int = 44, thickness: int = 3,
                  font: str = "simplex", seed: int = 0) -> tuple[np.ndarray, list[Glyph]]:
    """A frame of paper with ``rows`` of digits written one under another."""
    img = paper(width, height, seed=seed)
    glyphs: list[Glyph] = []
    y = int(1.8 * digit_px)
    for row in rows:
        glyphs += write(img, row, int(0.8 * digit_px), y, digit_px, thickness, font)
        y += int(2.0 * digit_px)
    return img, glyphs


def on_desk(sheet: np.ndarray, scale: float = 0.7, desk: tuple[int, int, int] = (60, 80, 110), seed: int = 0,
            ) -> tuple[np.ndarray, float, tuple[int, int]]:
    """``sheet`` shrunk by ``scale`` and laid on a darker, textured desk of the same size:
    ``(frame, scale, (x, y) of the sheet's corner)``."""
    h, w = sheet.shape[:2]
    rng = np.random.default_rng(seed)
    frame = np.empty_like(sheet)
    frame[:] = desk
    grain = cv2.GaussianBlur(rng.normal(0, 14, (h, w)).astype(np.float32), (0, 0), 3)
    frame = np.clip(frame.astype(np.float32) + grain[..., None], 0, 255).astype(np.uint8)
    small = cv2.resize(sheet, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    ox, oy = (w - small.shape[1]) // 2, (h - small.shape[0]) // 2
    frame[oy : oy + small.shape[0], ox : ox + small.shape[1]] = small
    return frame, scale, (ox, oy)
