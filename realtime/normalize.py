"""Crop of ink -> 28x28 MNIST-style array: the step that decides real-world accuracy.

MNIST digits were made by scaling each digit's ink so its longer side is 20 px (aspect
kept, anti-aliased), then placing it in a 28x28 field so its centre of mass sits at the
centre, white ink on black. A camera crop plain-resized to 28x28 is stretched, badly
centred and of the wrong stroke width, and a 99% MNIST model reads it poorly. This
module reproduces MNIST's recipe and also brings the stroke width near MNIST's (a fine
pen on a large digit otherwise shrinks to a faint hairline at 20 px; a marker to a blob).

Inputs are an "ink" image: float32 in [0, 1], 1 = darkest ink, 0 = paper (see
``realtime.segment.ink_map``), and optionally a boolean mask of the component's pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

SIZE = 28  # MNIST field (the checkpoint's "size"; these defaults match it)
BOX = 20  # the ink's longer side inside the field (the checkpoint's "box")
# MNIST stroke width at the 20-px scale is about 2-3 px; we aim for the middle.
TARGET_STROKE = 2.4


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: 2 * area / boundary length (exact for long strokes)."""
    m = mask.astype(np.uint8)
    area = int(np.count_nonzero(m))
    if area == 0:
        return 0.0
    inner = cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    boundary = area - int(np.count_nonzero(inner))
    return 2.0 * area / max(boundary, 1)


def _adjust_stroke(ink: np.ndarray, mask: np.ndarray, longer_side: int, target: float) -> np.ndarray:
    """Dilate thin strokes / erode thick ones so they land near ``target`` px at 20-px scale."""
    sw = stroke_width(mask)
    if sw <= 0:
        return ink
    want = target * longer_side / BOX  # stroke width wanted at this crop's scale
    if sw < 0.7 * want:
        k = int(round(want - sw))
        if k >= 2:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k | 1, k | 1))
            return cv2.dilate(ink, kernel)
    elif sw > 1.6 * want:
        k = int(round((sw - want) / 2))
        if k >= 1:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
            eroded = cv2.erode(ink, kernel)
            # never erode a digit away: keep the original if too little ink remains
            if eroded.sum() > 0.25 * ink.sum():
                return eroded
    return ink


def to_mnist(
    ink: np.ndarray,
    mask: np.ndarray | None = None,
    size: int = SIZE,
    box: int = BOX,
    stroke: float | None = TARGET_STROKE,
) -> np.ndarray:
    """MNIST-style ``size`` x ``size`` float32 in [0, 1] (white ink on black) from an ink crop.

    ``ink``: float32 [h, w], 1 = ink; ``mask``: the pixels that belong to this digit (others
    are zeroed so neighbours do not leak in). The crop is trimmed to its ink first.
    """
    ink = np.asarray(ink, dtype=np.float32)
    if mask is not None:
        ink = np.where(mask, ink, 0.0).astype(np.float32)
    else:
        mask = ink > 0.5
    ys, xs = np.nonzero(ink > 0.05)
    out = np.zeros((size, size), np.float32)
    if len(ys) == 0:
        return out
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    ink, mask = ink[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    h, w = ink.shape
    longer = max(h, w)
    if stroke is not None:
        # pad so a dilation is not clipped at the crop edge
        p = max(2, int(stroke * longer / box))
        ink = cv2.copyMakeBorder(ink, p, p, p, p, cv2.BORDER_CONSTANT, value=0)
        mask = cv2.copyMakeBorder(mask.astype(np.uint8), p, p, p, p, cv2.BORDER_CONSTANT, value=0)
        ink = _adjust_stroke(ink, mask, longer, stroke)
        ys, xs = np.nonzero(ink > 0.05)
        ink = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        h, w = ink.shape
        longer = max(h, w)
    scale = box / longer
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(ink, (nw, nh), interpolation=interp)
    peak = float(small.max())
    if peak <= 0:
        return out
    small = np.clip(small / peak, 0.0, 1.0)  # MNIST strokes peak at full white
    # centre of mass to the field centre, as MNIST did
    m = cv2.moments(small)
    cx = m["m10"] / m["m00"] if m["m00"] > 0 else nw / 2
    cy = m["m01"] / m["m00"] if m["m00"] > 0 else nh / 2
    ox, oy = int(round(size / 2 - cx)), int(round(size / 2 - cy))
    # clip the placement so the whole box stays inside the field
    ox = min(max(ox, 0), size - nw)
    oy = min(max(oy, 0), size - nh)
    out[oy : oy + nh, ox : ox + nw] = small
    return out


def plain_resize(ink: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Baseline for comparison: the crop stretched to ``size`` x ``size``, no MNIST recipe."""
    ink = np.asarray(ink, dtype=np.float32)
    if ink.size == 0:
        return np.zeros((size, size), np.float32)
    return cv2.resize(ink, (size, size), interpolation=cv2.INTER_AREA)
