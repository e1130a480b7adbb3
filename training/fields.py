"""The one input recipe of each network, shared by training and the live view.

MNIST digits were made by scaling each digit's ink so its longer side is 20 px (aspect
kept, anti-aliased), then placing it in a 28x28 field so its centre of mass sits at the
centre, white ink on black. A camera crop plain-resized to 28x28 is stretched, badly
centred and of the wrong stroke width, and a 99% MNIST model reads it poorly. This
module reproduces MNIST's recipe and also brings the stroke width near MNIST's (a fine
pen on a large digit otherwise shrinks to a faint hairline at 20 px; a marker to a blob).

- :func:`to_mnist` / :func:`to_mnist_batch`: the digit network's 28x28 field;
- :func:`wide_field` / :func:`wide_fields`: one or several digits side by side, scaled
  to MNIST's 20-px height in a field ``PAIR_WIDTH`` (the pair reader) or
  ``NUMBER_WIDTH`` (the number reader) wide;
- :data:`PAIR_OUTPUTS`: where each answer sits in the pair reader's output.

Inputs are an "ink" image: float32 in [0, 1] (1 = darkest ink, 0 = paper) or uint8 in
[0, 255] as ``realtime.segment.ink_map`` makes it, and optionally a boolean mask of the
component's pixels. Nothing here needs PyTorch: the live view imports it without it.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Sequence

import cv2
import numpy as np

SIZE = 28  # MNIST's field (checkpoints carry it as "size"; these defaults match it)
BOX = 20  # the ink's longer side inside the field (checkpoints carry it as "box")
# MNIST's stroke width at the 20-px scale is about 2-3 px; aim at the middle
TARGET_STROKE = 2.4
PAIR_WIDTH = 2 * SIZE  # two digits side by side
NUMBER_WIDTH = 128  # five MNIST-shaped digits side by side, the longest touching run rendered
NUMBER_BLANK = 10  # the number reader's CTC blank, after the ten digits
# a field's ink is kept this many px clear of its left and right sides
WIDE_MARGIN = 2
# crops longer than this are reduced to it (area-averaged) before their stroke is corrected:
# the correction's kernels grow with the crop, and nothing finer survives the 20-px box
MAX_CROP = 256


class PairOutputs:
    """Where each answer sits in the pair reader's output vector (read-only constants)."""

    left = slice(0, 10)  # the left digit's 10 logits
    right = slice(10, 20)  # the right digit's 10 logits
    pair = 20  # "this crop is two digits" logit
    ends = slice(21, 23)  # the left digit's right end, the right digit's left end (sigmoid: width fractions)
    digits = 23  # "this crop is handwritten digits at all" logit
    size = 24
    legacy_size = 23  # readers trained before the "digits" output: to them every crop is digits


PAIR_OUTPUTS = PairOutputs

_K3 = np.ones((3, 3), np.uint8)


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: 2 * area / boundary length (exact for long strokes)."""
    m = mask if mask.dtype == np.uint8 else mask.astype(np.uint8)
    area = cv2.countNonZero(m)
    if area == 0:
        return 0.0
    inner = cv2.countNonZero(cv2.erode(m, _K3, borderType=cv2.BORDER_CONSTANT, borderValue=0))
    return 2.0 * area / max(area - inner, 1)


def as_float_ink(ink: np.ndarray) -> np.ndarray:
    """An ink image as float32 in [0, 1] (uint8 ink maps are scaled from [0, 255])."""
    ink = np.asarray(ink)
    if ink.dtype == np.uint8:
        return ink.astype(np.float32) * np.float32(1 / 255)
    return ink.astype(np.float32, copy=False)


def as_u8_ink(ink: np.ndarray) -> np.ndarray:
    """An ink image as uint8 in [0, 255] (float ink in [0, 1] is scaled and rounded)."""
    ink = np.asarray(ink)
    if ink.dtype == np.uint8:
        return ink
    return np.clip(np.asarray(ink, np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)


@lru_cache(maxsize=32)
def _ellipse(k: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


def trim(ink: np.ndarray) -> np.ndarray:
    """``ink`` (uint8) cut to the box of its pixels above 5% darkness."""
    x, y, w, h = cv2.boundingRect((ink > 12).view(np.uint8))
    return ink[y : y + h, x : x + w]


def adjust_stroke(ink: np.ndarray, stroke: float, box: int) -> np.ndarray:
    """``ink`` (uint8, trimmed) with its stroke width brought near ``stroke`` px at the
    ``box``-px scale by a grey dilation or erosion at the crop's own scale (returned
    trimmed again); ``ink`` itself when it is near enough already."""
    h, w = ink.shape
    longer = max(h, w)
    _, strong = cv2.threshold(ink, 127, 1, cv2.THRESH_BINARY)
    sw = stroke_width(strong)
    want = stroke * longer / box  # stroke width wanted at this crop's scale
    if 0 < sw < 0.7 * want and int(round(want - sw)) >= 2:
        k = int(round(want - sw)) | 1
        # The ellipse reaches k // 2 px straight up, down, left and right, so the dilated
        # ink's box is the trimmed box grown by exactly that much on every side: padding
        # by it keeps the dilation whole and the result trimmed.
        r = k // 2
        return cv2.dilate(cv2.copyMakeBorder(ink, r, r, r, r, cv2.BORDER_CONSTANT, value=0), _ellipse(k))
    if sw > 1.6 * want and int(round((sw - want) / 4)) >= 1:
        # only halfway to the target: a marker's filled loops vanish under a full erosion
        k = int(round((sw - want) / 4))
        eroded = cv2.erode(ink, _ellipse(2 * k + 1))
        # never erode a digit away: keep the original if too little ink remains
        if int(eroded.sum()) > 0.25 * int(ink.sum()):
            trimmed = trim(eroded)
            if trimmed.size:
                return trimmed
    return ink


def _place(ink: np.ndarray, out: np.ndarray, box: int) -> None:
    """Scale trimmed uint8 ``ink`` so its longer side is ``box`` px (area-averaged) and
    write it into the zeroed uint8 field ``out`` with its centre of mass at the centre."""
    size = out.shape[0]
    h, w = ink.shape
    scale = box / max(h, w)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(ink, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    # centre of mass to the field centre, as MNIST did
    m = cv2.moments(small)
    cx = m["m10"] / m["m00"] if m["m00"] > 0 else nw / 2
    cy = m["m01"] / m["m00"] if m["m00"] > 0 else nh / 2
    # clip the placement so the whole box stays inside the field
    ox = min(max(int(round(size / 2 - cx)), 0), size - nw)
    oy = min(max(int(round(size / 2 - cy)), 0), size - nh)
    out[oy : oy + nh, ox : ox + nw] = small


def _to_unit(fields: np.ndarray) -> np.ndarray:
    """uint8 fields [N, size, size] -> float32 in [0, 1], each scaled so its brightest
    pixel is 1 (MNIST strokes peak at full white)."""
    if len(fields) == 0:
        return fields.astype(np.float32)
    peak = fields.reshape(len(fields), -1).max(axis=1).astype(np.float32)
    scale = np.divide(np.float32(1.0), peak, out=np.zeros_like(peak), where=peak > 0)
    return fields.astype(np.float32) * scale[:, None, None]


def to_mnist(ink: np.ndarray, mask: np.ndarray | None = None, size: int = SIZE, box: int = BOX,
             stroke: float | None = TARGET_STROKE) -> np.ndarray:
    """MNIST-style ``size`` x ``size`` float32 in [0, 1] (white ink on black) from an ink crop.

    ``ink``: float32 [h, w], 1 = ink; ``mask``: the pixels that belong to this digit (others
    are zeroed so neighbours do not leak in). The crop is trimmed to its ink first; the
    stroke width is brought near MNIST's (``stroke`` px at the 20-px scale; ``None``
    leaves it) by a grey dilation or erosion at the crop's own scale; the ink is scaled
    so its longer side is ``box`` px (area-averaged, i.e. anti-aliased) and placed by its
    centre of mass.
    """
    # the work is done in uint8: each OpenCV call on a small crop is cheaper, and 8 bits
    # is all the precision a camera crop has
    ink = as_u8_ink(ink)
    field = np.zeros((1, size, size), np.uint8)
    if mask is None:
        mask = ink > 127
    ink = trim(ink * mask)  # bool mask: zero what is not this digit's
    if ink.size == 0 or not ink.any():
        return field[0].astype(np.float32)
    if stroke is not None:
        ink = adjust_stroke(ink, stroke, box)
    _place(ink, field[0], box)
    return _to_unit(field)[0]


def bounded(crop: np.ndarray, longest: int = MAX_CROP) -> np.ndarray:
    """A uint8 crop reduced (area-averaged) so its longer side is at most ``longest``."""
    h, w = crop.shape
    if max(h, w) <= longest:
        return crop
    s = longest / max(h, w)
    return cv2.resize(crop, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def to_mnist_crops(crops: Sequence[np.ndarray], size: int = SIZE, box: int = BOX,
                   stroke: float | None = TARGET_STROKE) -> np.ndarray:
    """:func:`to_mnist` of many uint8 ink crops, each already masked and tight around its
    ink (as segmentation makes them, which spares the per-crop trim): float32
    [N, size, size], filled in uint8 and scaled to [0, 1] in one pass at the end."""
    fields = np.zeros((len(crops), size, size), np.uint8)
    for field, crop in zip(fields, crops):
        crop = bounded(as_u8_ink(crop))
        if stroke is not None:
            crop = adjust_stroke(crop, stroke, box)
        _place(crop, field, box)
    return _to_unit(fields)


def to_mnist_batch(ink: np.ndarray, boxes: Sequence[Sequence[int]], masks: Sequence[np.ndarray], size: int = SIZE,
                   box: int = BOX, stroke: float | None = TARGET_STROKE) -> np.ndarray:
    """:func:`to_mnist_crops` of components of one ink map: ``boxes[i]`` (x, y, w, h)
    tight around ``masks[i]``."""
    ink = as_u8_ink(ink)
    crops = [np.multiply(ink[y : y + h, x : x + w], m, dtype=np.uint8) for (x, y, w, h), m in zip(boxes, masks)]
    return to_mnist_crops(crops, size, box, stroke)


def wide_field(ink: np.ndarray, mask: np.ndarray | None, width: int) -> np.ndarray:
    """A crop of one or several digits in a [SIZE, ``width``] field, float32 in [0, 1]:
    scaled so its height is ``BOX`` px (its width at most ``width`` - 2 * WIDE_MARGIN
    px), centred, the stroke width brought to MNIST's. The pair reader's input at
    ``PAIR_WIDTH``, the number reader's at ``NUMBER_WIDTH``."""
    max_w = width - 2 * WIDE_MARGIN
    ink = as_u8_ink(ink)
    if mask is not None:
        ink = ink * mask
    ink = trim(ink)
    field = np.zeros((SIZE, width), np.float32)
    if ink.size == 0 or not ink.any():
        return field
    h, w = ink.shape
    scale = min(BOX / h, max_w / w)
    # the stroke width wanted at the crop's own scale is TARGET_STROKE / scale;
    # adjust_stroke aims at stroke * longer / box
    ink = adjust_stroke(ink, TARGET_STROKE * BOX / (scale * max(h, w)), BOX)
    h, w = ink.shape
    scale = min(BOX / h, max_w / w)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(ink, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    ox, oy = (width - nw) // 2, (SIZE - nh) // 2
    field[oy : oy + nh, ox : ox + nw] = small
    peak = float(field.max())
    return field / peak if peak > 0 else field


def wide_fields(ink: np.ndarray, boxes: Sequence[Sequence[int]], masks: Sequence[np.ndarray], width: int) -> np.ndarray:
    """:func:`wide_field` of several crops of one ink map: float32 [N, SIZE, ``width``]."""
    return wide_fields_of([ink[y : y + h, x : x + w] * m for (x, y, w, h), m in zip(boxes, masks)], width)


def wide_fields_of(crops: Sequence[np.ndarray], width: int) -> np.ndarray:
    """:func:`wide_field` of several ink crops (already masked): float32 [N, SIZE, ``width``]."""
    out = np.zeros((len(crops), SIZE, width), np.float32)
    for i, crop in enumerate(crops):
        out[i] = wide_field(crop, None, width)
    return out


def plain_resize(ink: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Baseline for comparison: the crop stretched to ``size`` x ``size``, no MNIST recipe."""
    ink = as_float_ink(ink)
    if ink.size == 0:
        return np.zeros((size, size), np.float32)
    return cv2.resize(ink, (size, size), interpolation=cv2.INTER_AREA)


def is_int(v: Any) -> bool:
    """A plain int (not a bool): what a checkpoint's or a graph's integer fields must be."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def normalization_problems(norm: Any) -> list[str]:
    """What keeps ``norm`` from being an input recipe's constants (mean, std > 0, size,
    box), one line each: checked alike in checkpoints and in the graphs made from them."""
    if not isinstance(norm, dict):
        return [f"normalization must be a dict, not {type(norm).__name__}"]
    problems = [f"normalization lacks {k!r}" for k in ("mean", "std", "size", "box") if k not in norm]
    if "mean" in norm and not is_number(norm["mean"]):
        problems.append(f"normalization mean {norm['mean']!r} is not a finite number")
    if "std" in norm and not (is_number(norm["std"]) and norm["std"] > 0):
        problems.append(f"normalization std {norm['std']!r} is not a finite number > 0")
    for k in ("size", "box"):
        if k in norm and not (is_int(norm[k]) and norm[k] > 0):
            problems.append(f"normalization {k} {norm[k]!r} is not a positive integer")
    if is_int(norm.get("size")) and is_int(norm.get("box")) and norm["box"] > norm["size"]:
        problems.append(f"normalization box {norm['box']} is larger than its field ({norm['size']})")
    return problems
