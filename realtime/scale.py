"""How large the marks are: the scale a frame is read at.

Segmentation's pixel constants (the closing that estimates the paper's light, the
thickness of a ruled line, the least digit height) suit digits tens of pixels tall drawn
with strokes a few pixels wide. A close-up of one marker digit in a phone photo has
strokes 40 px wide, and a 4000-px photo has everything several times larger. So the
marks are measured first on a small copy of the frame, and the frame is read on a copy
reduced until the big marks are of the size reading needs (and their strokes thin
enough for the closing) -- never so far that the smallest ink on the copy becomes too
small to read, and never enlarged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from realtime.segment import SegmentConfig, ink_map, ink_thresholds, least_height, shaped_like_digits


@dataclass(frozen=True)
class ScaleConfig:
    enabled: bool = True  # measure the marks and read large ones on a smaller copy
    probe_px: int = 320  # the marks are measured on a copy at most this long ...
    least_probe_px: int = 160  # ... or segmentation's own reduced copy, when that is at least this long (cheaper)
    probe_kernel_px: float = 120.0  # the probe's closing is this wide in frame px: it removes a marker's
    # 40-px strokes (so they are measured as ink) but not a shadow hundreds of px across (which stays paper)
    target_height: float = 64.0  # digits taller than this are read on a smaller copy (MNIST's are 20 px) ...
    max_stroke: float = 16.0  # ... as are strokes wider than this (the ink map's closing removes up to ~30 px)
    keep_height: float = 24.0  # ... but the smallest ink found stays at least this tall
    resolved_stroke: float = 3.0  # strokes are measured only when at least this wide on the probe
    min_side: int = 160  # the copy's shorter side is never smaller than this
    least_read_px: float = 0.0  # the least digit a frame promises (segmentation's least height, a share of its
    # side) is read at least this tall and no taller: a 1080p frame needs no more pixels than a 600-line one (0: off)


@dataclass(frozen=True)
class Scale:
    """The work scale (the copy's size over the frame's, at most 1) and what it was
    chosen from, in frame pixels (``None``: nothing measured)."""

    factor: float = 1.0
    height: float | None = None  # the digit-shaped marks' median height
    stroke: float | None = None  # the widest of their strokes (90th percentile)
    smallest: float | None = None  # the least height of any ink on the probe


def _strokes(mask: np.ndarray, labels: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """Each component's mean stroke width: twice its area over its boundary length."""
    inner = cv2.erode(mask, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    boundary = np.bincount(labels[(mask > 0) & (inner == 0)], minlength=len(stats) + 1)[1:]
    return 2.0 * stats[:, cv2.CC_STAT_AREA] / np.maximum(boundary, 1)


def measure(gray: np.ndarray, paper: np.ndarray | None = None, cfg: ScaleConfig = ScaleConfig(),
            seg: SegmentConfig = SegmentConfig(), reduced: np.ndarray | None = None) -> Scale:
    """The marks of a frame measured on a copy of its gray at most ``probe_px`` long
    (made from ``reduced``, a smaller copy segmentation made already, when that is large
    enough), only those on the sheet when a desk shows around it (``paper``, at the
    frame's size: a dark desk is all "ink"), and the scale to read the frame at
    (:class:`Scale`)."""
    if not cfg.enabled:
        return Scale()
    h, w = gray.shape[:2]
    cap = ceiling((h, w), cfg, seg)
    m = _measured(gray, paper, cfg, seg, reduced)
    return m if m.factor <= cap else dataclasses.replace(m, factor=cap)


def ceiling(shape: tuple[int, int], cfg: ScaleConfig = ScaleConfig(), seg: SegmentConfig = SegmentConfig()) -> float:
    """The largest scale a frame of ``shape`` (h, w) needs: the one at which its least
    digit (:func:`realtime.segment.least_height`) is ``least_read_px`` tall, never below
    ``min_side`` (1: no ceiling)."""
    if cfg.least_read_px <= 0:
        return 1.0
    cap = cfg.least_read_px / least_height(shape, seg)
    return min(1.0, max(cap, cfg.min_side / min(shape)))


def _measured(gray: np.ndarray, paper: np.ndarray | None, cfg: ScaleConfig, seg: SegmentConfig,
              reduced: np.ndarray | None) -> Scale:
    h, w = gray.shape[:2]
    f = max(1.0, max(h, w) / cfg.probe_px)
    size = (max(1, round(w / f)), max(1, round(h / f)))
    src = reduced if reduced is not None and reduced.shape[1] >= min(size[0], cfg.least_probe_px) else gray
    if src is reduced and reduced.shape[1] < size[0]:
        size, f = (reduced.shape[1], reduced.shape[0]), w / reduced.shape[1]
    small = src if src.shape[1] == size[0] else cv2.resize(src, size, interpolation=cv2.INTER_AREA)
    kernel = max(3, int(round(cfg.probe_kernel_px / (f * seg.bg_scale))) | 1)
    probe_seg = SegmentConfig(bg_kernel=kernel, min_height_px=max(8, seg.min_height_px // 2))
    ink = ink_map(small, probe_seg)
    region = None if paper is None else cv2.resize(paper, small.shape[::-1], interpolation=cv2.INTER_NEAREST)
    weak, strong = ink_thresholds(ink, probe_seg, region)
    _, mask = cv2.threshold(ink, weak * 255, 255, cv2.THRESH_BINARY)
    if region is not None:
        mask = cv2.bitwise_and(mask, region)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    stats = stats[1:]
    # faint ink counts for the smallest: thin pencil digits fade on the probe to a few
    # weak pixels, and must not be reduced away
    visible = (stats[:, cv2.CC_STAT_HEIGHT] >= 3) & (stats[:, cv2.CC_STAT_AREA] >= 4)
    if not visible.any():
        return Scale()
    smallest = float(stats[visible, cv2.CC_STAT_HEIGHT].min()) * f
    inked = np.zeros(n, bool)
    inked[labels[(ink >= 255 * strong) & (mask > 0)]] = True
    shaped = shaped_like_digits(stats, mask.shape, probe_seg) & inked[1:] & visible
    if not shaped.any():
        return Scale(smallest=smallest)
    height = float(np.median(stats[shaped, cv2.CC_STAT_HEIGHT])) * f
    stroke = float(np.percentile(_strokes(mask, labels, stats)[shaped], 90))
    # a stroke narrower than a few probe pixels is not resolved there: only its being thin is known
    resolved = stroke >= cfg.resolved_stroke
    want = cfg.target_height / height
    if resolved:
        want = min(want, cfg.max_stroke / (stroke * f))
    factor = max(want, cfg.keep_height / smallest, cfg.min_side / min(h, w))
    return Scale(min(1.0, factor), height, stroke * f if resolved else None, smallest)


def paper_scale(stroke: float | None, seg: SegmentConfig = SegmentConfig()) -> int:
    """How many times smaller a copy the paper's light is estimated on (``bg_scale`` and
    up, by powers of two) so that its closing is wider than twice the widest strokes
    (``stroke``, in the pixels read): a marker's strokes would otherwise read hollow."""
    scale = max(1, seg.bg_scale)
    while stroke is not None and seg.bg_kernel * scale < 2.0 * stroke and scale < 16:
        scale *= 2
    return scale


def to_frame(box: tuple[int, int, int, int], factor: float) -> tuple[int, int, int, int]:
    """A box on the reduced copy in the frame's pixels (grown to whole pixels)."""
    if factor >= 1.0:
        return box
    x, y, w, h = box
    x0, y0 = int(np.floor(x / factor)), int(np.floor(y / factor))
    x1, y1 = int(np.ceil((x + w) / factor)), int(np.ceil((y + h) / factor))
    return x0, y0, x1 - x0, y1 - y0
