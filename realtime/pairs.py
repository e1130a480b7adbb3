"""Two touching digits read as a pair: the crop recipe shared by training and the live view.

Touching handwritten digits overlap: a slanted 1 leans over the 9 beside it, a 6's bowl
runs under the next digit's stem. No vertical cut separates them, so a single-digit
reader sees each half with a piece of its neighbour and misreads it. The pair reader
(``training.model.PairNet``) sees both digits whole instead: the blob's ink scaled so
its height is ``BOX`` px (its width at most ``MAX_W`` px), centred in a ``SIZE`` x
``2 * SIZE`` field, with the stroke width brought to MNIST's as for single digits. It
answers both digits, whether the crop is a pair at all, where each digit ends, as
fractions of the crop's width (the boxes it reports), and whether the crop is
handwritten digits at all (one, two or several, whole or cut) rather than letters or a
scribble: the live view does not split a wide blob that answer rejects.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from realtime.normalize import BOX, SIZE, TARGET_STROKE, _adjust_stroke, _trim, as_u8_ink

WIDTH = 2 * SIZE
MAX_W = WIDTH - 4  # a very wide pair is scaled to fit, keeping 2 px clear either side
# The pair net's outputs, in order: the left digit's 10 logits, the right digit's 10, one
# "this is a pair" logit, the two split logits (left digit's right end, right digit's
# left end, as fractions of the crop's width after a sigmoid) and one "these are digits"
# logit. Readers trained before that last output (LEGACY_OUTPUTS) still load: to them
# every crop is digits.
OUTPUTS = 24
LEGACY_OUTPUTS = 23


def pair_field(ink: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The pair reader's input for one crop: float32 [SIZE, 2 * SIZE] in [0, 1], white ink
    on black. ``ink``: uint8 (or float in [0, 1]) ink crop tight around its pixels;
    ``mask``: the pixels that belong to the crop (others zeroed)."""
    return wide_field(ink, mask, WIDTH)


def wide_field(ink: np.ndarray, mask: np.ndarray | None, width: int) -> np.ndarray:
    """A crop of one or several digits in a [SIZE, ``width``] field, float32 in [0, 1]:
    scaled so its height is ``BOX`` px (its width at most ``width`` - 4 px), centred, the
    stroke width brought to MNIST's. Shared by the pair reader and the number reader
    (``realtime.sequences``)."""
    max_w = width - 4
    ink = as_u8_ink(ink)
    if mask is not None:
        ink = ink * mask
    ink = _trim(ink)
    field = np.zeros((SIZE, width), np.float32)
    if ink.size == 0 or not ink.any():
        return field
    h, w = ink.shape
    scale = min(BOX / h, max_w / w)
    # the stroke width wanted at the crop's own scale is TARGET_STROKE / scale;
    # _adjust_stroke aims at stroke * longer / box
    ink = _adjust_stroke(ink, TARGET_STROKE * BOX / (scale * max(h, w)), BOX)
    h, w = ink.shape
    scale = min(BOX / h, max_w / w)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(ink, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    ox, oy = (width - nw) // 2, (SIZE - nh) // 2
    field[oy : oy + nh, ox : ox + nw] = small
    peak = float(field.max())
    return field / peak if peak > 0 else field


def pair_fields(ink: np.ndarray, boxes: Sequence[tuple[int, int, int, int]],
                masks: Sequence[np.ndarray], width: int = WIDTH) -> np.ndarray:
    """:func:`wide_field` of several crops of one ink map: float32 [N, SIZE, ``width``]
    (the pair reader's inputs by default)."""
    out = np.zeros((len(boxes), SIZE, width), np.float32)
    for i, ((x, y, w, h), m) in enumerate(zip(boxes, masks)):
        out[i] = wide_field(ink[y : y + h, x : x + w], m, width)
    return out


def decode(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pair net logits [N, OUTPUTS] -> ``(left probs [N, 10], right probs [N, 10],
    pair probability [N], splits [N, 2], digits probability [N])``."""
    logits = np.asarray(logits, np.float64)

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    sig = 1.0 / (1.0 + np.exp(-logits[:, 20:OUTPUTS]))
    digits = sig[:, 3] if sig.shape[1] > 3 else np.ones(len(sig))
    return softmax(logits[:, :10]), softmax(logits[:, 10:20]), sig[:, 0], sig[:, 1:3], digits
