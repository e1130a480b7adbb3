"""Generated "not a digit" examples, normalized like the live recognizer's crops.

A camera frame holds marks that are not digits: scribbles, dashes, and two touching
digits read as one blob. Trained with an explicit 11th class for them, the network can
say "none of these" instead of naming its nearest digit, and the recognizer can prefer
splitting a blob when the whole of it looks like no digit.

Three kinds, all from the MNIST *training* split or drawn at random (never letters in
the scene renderer's font, so that benchmark stays unseen):

- pairs: two training digits side by side, overlapping a few pixels, normalized as one;
- scribbles: smooth random curves through 5-8 points (fewer look like 1, 7 or 0);
- dashes: short near-horizontal strokes (never near-vertical: that is a "1").

The letter skeletons (:data:`LETTER_STROKES`, :func:`_letters`) and the printed letters
(:func:`_printed`) are used by the pair reader's training (``training.pairs``), not by
this bank: letters added here did not lower the single-digit network's false readings on
rendered letters.

Everything is normalized the MNIST way (ink box scaled to 20 px on its longer side,
centre of mass at the centre) with the same function the recognizer uses.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import torch

NOT_A_DIGIT = "not a digit"


def _normalize(ink: np.ndarray, size: int = 28, box: int = 20) -> np.ndarray:
    """MNIST's recipe (as ``realtime.normalize.to_mnist`` without its stroke-width step,
    which training covers by augmentation; training never imports realtime)."""
    x, y, w, h = cv2.boundingRect((ink > 0.05).astype(np.uint8))
    out = np.zeros((size, size), np.float32)
    if w == 0 or h == 0:
        return out
    ink = ink[y : y + h, x : x + w]
    s = box / max(w, h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(ink, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    small /= max(float(small.max()), 1e-6)
    m = cv2.moments(small)
    cx, cy = (m["m10"] / m["m00"], m["m01"] / m["m00"]) if m["m00"] > 0 else (nw / 2, nh / 2)
    ox = min(max(int(round(size / 2 - cx)), 0), size - nw)
    oy = min(max(int(round(size / 2 - cy)), 0), size - nh)
    out[oy : oy + nh, ox : ox + nw] = small
    return out


def _smooth(points: np.ndarray, rounds: int) -> np.ndarray:
    """Chaikin corner cutting: a skeleton's corners rounded the way a pen rounds them."""
    for _ in range(rounds):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        points = np.concatenate([points[:1], np.stack([q, r], 1).reshape(-1, 2), points[-1:]])
    return points


def _scribble(rng: np.random.Generator) -> np.ndarray:
    canvas = np.zeros((112, 112), np.float32)
    # five or more turns: three or four make plain curves that look like 1, 7, 0 or 2
    n = int(rng.integers(5, 9))
    pts = rng.uniform(10, 102, size=(n, 2))
    pts = _smooth(pts, 3)  # curves, not zigzags
    cv2.polylines(canvas, [np.round(pts).astype(np.int32)], False, 1.0, int(rng.integers(4, 13)), cv2.LINE_AA)
    return canvas


def _dash(rng: np.random.Generator) -> np.ndarray:
    canvas = np.zeros((112, 112), np.float32)
    ang = np.deg2rad(rng.uniform(-25, 25))
    length = rng.uniform(40, 100)
    c = np.array([56.0, 56.0])
    d = np.array([np.cos(ang), np.sin(ang)]) * length / 2
    p0, p1 = np.round(c - d).astype(int), np.round(c + d).astype(int)
    cv2.line(canvas, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1.0, int(rng.integers(5, 14)), cv2.LINE_AA)
    return canvas


def _pair(rng: np.random.Generator, images: np.ndarray) -> np.ndarray:
    a, b = images[rng.integers(0, len(images), 2)].astype(np.float32) / 255.0
    overlap = int(rng.integers(2, 9))
    w = 56 - overlap
    canvas = np.zeros((28, w), np.float32)
    canvas[:, :28] = a
    canvas[:, 28 - overlap :] = np.maximum(canvas[:, 28 - overlap :], b)
    dy = int(rng.integers(-3, 4))  # handwriting is not on a perfect baseline
    canvas[:, 28 - overlap :] = np.roll(canvas[:, 28 - overlap :], dy, axis=0)
    return canvas


# Letter skeletons in a unit box (x right, y down; ascenders reach y = 0, the x-height
# starts at 0.35), one polyline per stroke. Only letters that no digit resembles: no
# o/O (0), l/I (1), z/Z (2), s/S (5), b/G (6), g/q (9), B (8), c/a (0, 6, 2, 9), y (4).
LETTER_STROKES: dict[str, list[list[tuple[float, float]]]] = {
    "e": [[(0.05, 0.68), (0.95, 0.68), (0.85, 0.45), (0.55, 0.35), (0.25, 0.4), (0.05, 0.62), (0.08, 0.85),
           (0.35, 1.0), (0.7, 0.98), (0.95, 0.88)]],
    "h": [[(0.05, 0.0), (0.05, 1.0)], [(0.05, 0.6), (0.3, 0.4), (0.6, 0.36), (0.9, 0.45), (0.95, 0.65), (0.95, 1.0)]],
    "k": [[(0.1, 0.0), (0.1, 1.0)], [(0.9, 0.35), (0.1, 0.72)], [(0.4, 0.6), (0.95, 1.0)]],
    "m": [[(0.05, 0.35), (0.05, 1.0)], [(0.05, 0.5), (0.2, 0.36), (0.38, 0.37), (0.5, 0.5), (0.5, 1.0)],
          [(0.5, 0.5), (0.65, 0.36), (0.85, 0.37), (0.95, 0.5), (0.95, 1.0)]],
    "n": [[(0.1, 0.35), (0.1, 1.0)], [(0.1, 0.52), (0.35, 0.36), (0.7, 0.37), (0.9, 0.52), (0.9, 1.0)]],
    "r": [[(0.15, 0.35), (0.15, 1.0)], [(0.15, 0.55), (0.4, 0.38), (0.7, 0.35), (0.9, 0.4)]],
    "u": [[(0.1, 0.35), (0.1, 0.82), (0.3, 1.0), (0.65, 0.98), (0.9, 0.8)], [(0.9, 0.35), (0.9, 1.0)]],
    "v": [[(0.0, 0.35), (0.5, 1.0), (1.0, 0.35)]],
    "w": [[(0.0, 0.35), (0.22, 1.0), (0.5, 0.5), (0.78, 1.0), (1.0, 0.35)]],
    "x": [[(0.05, 0.35), (0.95, 1.0)], [(0.95, 0.35), (0.05, 1.0)]],
    "A": [[(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)], [(0.22, 0.6), (0.78, 0.6)]],
    "E": [[(0.9, 0.0), (0.1, 0.0), (0.1, 1.0), (0.9, 1.0)], [(0.1, 0.5), (0.7, 0.5)]],
    "F": [[(0.9, 0.0), (0.1, 0.0), (0.1, 1.0)], [(0.1, 0.5), (0.7, 0.5)]],
    "H": [[(0.1, 0.0), (0.1, 1.0)], [(0.9, 0.0), (0.9, 1.0)], [(0.1, 0.5), (0.9, 0.5)]],
    "K": [[(0.1, 0.0), (0.1, 1.0)], [(0.9, 0.0), (0.1, 0.6)], [(0.35, 0.42), (0.95, 1.0)]],
    "M": [[(0.0, 1.0), (0.05, 0.0), (0.5, 0.7), (0.95, 0.0), (1.0, 1.0)]],
    "N": [[(0.1, 1.0), (0.1, 0.0), (0.9, 1.0), (0.9, 0.0)]],
    "R": [[(0.1, 1.0), (0.1, 0.0), (0.7, 0.02), (0.9, 0.2), (0.85, 0.4), (0.6, 0.5), (0.1, 0.5)],
          [(0.45, 0.5), (0.95, 1.0)]],
    "W": [[(0.0, 0.0), (0.25, 1.0), (0.5, 0.3), (0.75, 1.0), (1.0, 0.0)]],
    "f": [[(0.9, 0.08), (0.7, 0.0), (0.45, 0.05), (0.4, 0.3), (0.4, 1.0)], [(0.1, 0.4), (0.8, 0.4)]],
    "p": [[(0.1, 0.35), (0.1, 1.0)], [(0.1, 0.45), (0.45, 0.35), (0.85, 0.4), (0.95, 0.55), (0.85, 0.72),
                                      (0.45, 0.75), (0.1, 0.65)]],
    "t": [[(0.4, 0.1), (0.4, 0.9), (0.55, 1.0), (0.85, 0.95)], [(0.05, 0.38), (0.85, 0.38)]],
    "L": [[(0.1, 0.0), (0.1, 1.0), (0.9, 1.0)]],
    "P": [[(0.1, 1.0), (0.1, 0.0), (0.7, 0.02), (0.9, 0.2), (0.85, 0.42), (0.6, 0.52), (0.1, 0.52)]],
    "T": [[(0.0, 0.0), (1.0, 0.0)], [(0.5, 0.0), (0.5, 1.0)]],
    "V": [[(0.0, 0.0), (0.5, 1.0), (1.0, 0.0)]],
    "X": [[(0.05, 0.0), (0.95, 1.0)], [(0.95, 0.0), (0.05, 1.0)]],
}


def _letter_count_and_pool(rng: np.random.Generator) -> tuple[int, list[str]]:
    """How many letters a generated word has and the letters it draws from: a single
    letter most often (the live pipeline reads each separate mark on its own), else two
    to four; all lower case or, less often, all capitals."""
    n = 1 if rng.random() < 0.5 else int(rng.integers(2, 5))
    upper = rng.random() < 0.3
    return n, [k for k in LETTER_STROKES if k.isupper() == upper]


def _letters(rng: np.random.Generator) -> np.ndarray:
    """One to four letters in a row, written with one slant, size and pen.

    Letters vary the way hands and fonts do: narrow to wide, upright to strongly italic,
    sharp corners or round arches, thin or heavy strokes, separate or joined by a
    ligature at the baseline. A pair reader trained on one narrow style rejected exactly
    that style and still read rounder, wider, heavier letters (an italic n, u or H) as
    two 1s."""
    canvas = np.zeros((112, 320), np.float32)
    n, pool = _letter_count_and_pool(rng)
    h = rng.uniform(60.0, 90.0)
    slant = rng.uniform(-0.5, 0.15)
    # up to a heavy marker: a pen a quarter of the ascender height is over a third of an n
    thick = max(3, int(round(h * rng.uniform(0.05, 0.25))))
    wobble = rng.uniform(0.02, 0.06)
    rounds = int(rng.choice([0, 1, 2, 3], p=[0.3, 0.2, 0.3, 0.2]))
    joined = n > 1 and rng.random() < 0.35
    x = 10.0
    last: np.ndarray | None = None
    for _ in range(n):
        key = str(rng.choice(pool))
        w = h * rng.uniform(0.45, 1.0) * (1.3 if key in "mwMW" else 1.0)
        if x + w + 10 > canvas.shape[1]:
            break
        for k, stroke in enumerate(LETTER_STROKES[key]):
            pts = np.asarray(stroke, np.float64) + rng.normal(0.0, wobble, (len(stroke), 2))
            px = x + pts[:, 0] * w - slant * (pts[:, 1] - 1.0) * h
            py = 12.0 + pts[:, 1] * h
            xy = _smooth(np.stack([px, py], axis=1), rounds) if len(stroke) > 2 else np.stack([px, py], axis=1)
            if joined and k == 0 and last is not None:
                # a ligature from the last letter's end to this one's first stroke
                cv2.polylines(canvas, [np.round(np.stack([last, xy[0]])).astype(np.int32)], False, 1.0, thick,
                              cv2.LINE_AA)
            cv2.polylines(canvas, [np.round(xy).astype(np.int32)], False, 1.0, thick, cv2.LINE_AA)
            last = xy[-1]
        x += w + (rng.uniform(-0.02, 0.1) if joined else rng.uniform(0.05, 0.25)) * h
    return canvas


# Typefaces matplotlib ships with every install (DejaVu, STIX, Computer Modern), in
# upright, italic and bold cuts. Never OpenCV's Hershey fonts: the benchmark's rendered
# letters are drawn in those, and they stay unseen.
PRINTED_FONTS = ("DejaVuSans", "DejaVuSans-Oblique", "DejaVuSans-Bold", "DejaVuSans-BoldOblique",
                 "DejaVuSansMono", "DejaVuSansMono-Oblique", "DejaVuSansMono-Bold", "DejaVuSansMono-BoldOblique",
                 "DejaVuSerif", "DejaVuSerif-Italic", "DejaVuSerif-Bold", "DejaVuSerif-BoldItalic",
                 "STIXGeneral", "STIXGeneralItalic", "STIXGeneralBol", "STIXGeneralBolIta",
                 "cmr10", "cmss10", "cmti10", "cmtt10", "cmb10")


@functools.cache
def _font(name: str, size: int):  # -> PIL.ImageFont.FreeTypeFont
    import matplotlib
    from PIL import ImageFont

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / f"{name}.ttf"), size)


def _printed(rng: np.random.Generator) -> np.ndarray:
    """One to four printed letters (the letters of :data:`LETTER_STROKES`): a heading,
    a form's label or a typed word on the sheet. Handwriting-like generated letters
    alone left the pair reader passing clean, even-stroked letters as digits: printed
    ones in a font it never saw got through about as often as the benchmark's."""
    from PIL import Image, ImageDraw

    n, pool = _letter_count_and_pool(rng)
    text = "".join(rng.choice(pool, size=n))
    font = _font(str(rng.choice(PRINTED_FONTS)), 80)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("L", (right - left + 40, bottom - top + 40), 0)
    ImageDraw.Draw(image).text((20 - left, 20 - top), text, fill=255, font=font)
    ink = np.asarray(image, np.float32) / 255.0
    # from hairline to marker: thin the strokes a little or thicken them a lot
    k = int(rng.integers(-4, 9))
    if abs(k) > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (abs(k), abs(k)))
        ink = cv2.dilate(ink, kernel) if k > 0 else cv2.erode(ink, kernel)
    # a slant of its own on top of the font's: italic either way, as a camera sees it
    shear = rng.uniform(-0.35, 0.15)
    h, w = ink.shape
    m = np.float32([[1, shear, -shear * h if shear < 0 else 0], [0, 1, 0]])
    return cv2.warpAffine(ink, m, (w + int(abs(shear) * h) + 2, h))


def make_negatives(n: int, images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``n`` negatives as uint8 [n, 28, 28] (white on black), like MNIST images."""
    rng = np.random.default_rng(seed)
    imgs = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    out = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        kind = rng.random()
        if kind < 0.6:
            ink = _pair(rng, imgs)
        elif kind < 0.9:
            ink = _scribble(rng)
        else:
            ink = _dash(rng)
        out[i] = np.clip(_normalize(ink) * 255.0, 0, 255).astype(np.uint8)
    return torch.from_numpy(out)
