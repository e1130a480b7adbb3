"""Frame -> candidate digit boxes (and each one's ink mask).

Stages, each a pure function of its inputs:

1. ``ink_map``: grayscale, then divide by a smooth estimate of the paper's brightness,
   so shadows, gradients and tinted paper all become "paper = 0"; ink darkness is
   relative to the paper around it (1 = black ink).
2. ``binarize``: a hysteresis threshold on that map (weak ink kept only when connected
   to strong ink), which keeps faint pencil strokes attached to a digit while dropping
   paper texture, and removes long ruled / grid lines, bridging the gaps they leave.
3. ``find_candidates``: connected components, fragments of one digit merged (a 5's
   detached bar, a broken 4), then components kept when digit-like by size relative to
   the frame, aspect ratio and ink density.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentConfig:
    # background estimate: max filter at 1/bg_scale resolution, wider than thick strokes
    bg_scale: int = 4
    bg_kernel: int = 9
    weak: float = 0.16  # ink darkness (fraction of paper brightness) that may be ink
    strong: float = 0.32  # darkness a component must reach somewhere to count as ink
    min_height_px: int = 12
    min_height_frac: float = 0.02  # of the frame's shorter side
    max_height_frac: float = 0.7
    min_aspect: float = 0.06  # width / height; a "1" is very narrow
    max_aspect: float = 1.5
    min_density: float = 0.06  # ink pixels / box area
    max_density: float = 0.8  # only checked on boxes wider than max_density_aspect
    max_density_aspect: float = 0.35
    # a straight run of ink longer than this share of the frame is a ruled or grid line;
    # digits up to ~160 px never have strokes that long at 640 px and up
    line_frac: float = 0.2
    merge_overlap: float = 0.5  # x-overlap (of the narrower box) for fragments to merge
    merge_height: float = 1.45  # merged height at most this times the taller fragment


@dataclass
class Candidate:
    """A digit-like component: ``box`` (x, y, w, h) in frame pixels, tight around its ink,
    and ``mask`` (bool [h, w]) of the pixels that belong to it."""

    box: tuple[int, int, int, int]
    mask: np.ndarray


def to_gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def ink_map(gray: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> np.ndarray:
    """Ink darkness relative to the local paper brightness, float32 in [0, 1]."""
    h, w = gray.shape
    s = max(1, cfg.bg_scale)
    small = cv2.resize(gray, (max(1, w // s), max(1, h // s)), interpolation=cv2.INTER_AREA)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (cfg.bg_kernel, cfg.bg_kernel))
    # a max filter wider than any stroke removes the ink, leaving the paper's light
    bg = cv2.dilate(small, k)
    bg = cv2.GaussianBlur(bg, (0, 0), cfg.bg_kernel / 2)
    bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    g = cv2.GaussianBlur(gray, (3, 3), 0).astype(np.float32)
    ink = 1.0 - g / np.maximum(bg, 16.0)
    return np.clip(ink, 0.0, 1.0, out=ink)


def remove_lines(mask: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> np.ndarray:
    """Drop long horizontal / vertical runs (ruled and grid lines), then bridge the gaps
    they leave in strokes that crossed them."""
    h, w = mask.shape
    L = max(40, int(cfg.line_frac * w))
    horiz = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (L, 1)))
    vert = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(40, int(cfg.line_frac * h)))))
    lines = cv2.bitwise_or(horiz, vert)
    if not lines.any():
        return mask
    # grow the line mask a pixel so anti-aliased line edges go too
    lines = cv2.dilate(lines, np.ones((3, 3), np.uint8))
    out = cv2.bitwise_and(mask, cv2.bitwise_not(lines))
    # a stroke cut by a horizontal line leaves a vertical gap, and vice versa
    bridged_v = cv2.morphologyEx(out, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 7)))
    bridged_h = cv2.morphologyEx(out, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (7, 1)))
    repair = cv2.bitwise_and(cv2.bitwise_or(bridged_v, bridged_h), lines)
    return cv2.bitwise_or(out, repair)


def binarize(ink: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> np.ndarray:
    """uint8 mask (255 = ink): weak ink connected to strong ink, lines removed."""
    weak = (ink > cfg.weak).astype(np.uint8) * 255
    weak = remove_lines(weak, cfg)
    n, labels = cv2.connectedComponents(weak, connectivity=8)
    if n <= 1:
        return weak
    strong = ink > cfg.strong
    keep = np.zeros(n, bool)
    keep[np.unique(labels[strong & (weak > 0)])] = True
    keep[0] = False
    return (keep[labels] * 255).astype(np.uint8)


def _merge_fragments(boxes: np.ndarray, cfg: SegmentConfig) -> np.ndarray:
    """Group indices: pieces stacked vertically that together still look like one digit."""
    n = len(boxes)
    parent = np.arange(n)
    if n < 2:
        return parent
    x, y, w, h = (boxes[:, i].astype(np.float64) for i in range(4))
    ox = np.minimum(x[:, None] + w[:, None], x[None] + w[None]) - np.maximum(x[:, None], x[None])
    overlap = ox / np.maximum(np.minimum(w[:, None], w[None]), 1)
    top = np.minimum(y[:, None], y[None])
    bottom = np.maximum(y[:, None] + h[:, None], y[None] + h[None])
    merged_h = bottom - top
    taller = np.maximum(h[:, None], h[None])
    gap = np.maximum(y[:, None], y[None]) - np.minimum(y[:, None] + h[:, None], y[None] + h[None])
    ok = (overlap >= cfg.merge_overlap) & (merged_h <= cfg.merge_height * taller) & (gap <= 0.35 * taller)
    np.fill_diagonal(ok, False)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(ok))):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return np.array([find(i) for i in range(n)])


def find_candidates(mask: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> list[Candidate]:
    """Digit-like components of a binary ink mask, fragments merged, in reading order."""
    H, W = mask.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return []
    stats = stats[1:]
    ids = np.arange(1, n)
    min_h = max(cfg.min_height_px, cfg.min_height_frac * min(H, W))
    # specks cannot become digits even when merged; drop them before pairing
    big = (stats[:, cv2.CC_STAT_AREA] >= 4) & (stats[:, cv2.CC_STAT_HEIGHT] >= 3)
    big &= stats[:, cv2.CC_STAT_HEIGHT] >= 0.25 * min_h
    stats, ids = stats[big], ids[big]
    if len(ids) == 0:
        return []
    boxes = stats[:, :4].astype(np.int64)
    groups = _merge_fragments(boxes, cfg)
    out: list[Candidate] = []
    for g in np.unique(groups):
        members = np.nonzero(groups == g)[0]
        x0 = int(boxes[members, 0].min())
        y0 = int(boxes[members, 1].min())
        x1 = int((boxes[members, 0] + boxes[members, 2]).max())
        y1 = int((boxes[members, 1] + boxes[members, 3]).max())
        w, h = x1 - x0, y1 - y0
        area = int(stats[members, cv2.CC_STAT_AREA].sum())
        aspect = w / h
        density = area / (w * h)
        if h < min_h or h > cfg.max_height_frac * H:
            continue
        if not (cfg.min_aspect <= aspect <= cfg.max_aspect):
            continue
        if density < cfg.min_density or (aspect > cfg.max_density_aspect and density > cfg.max_density):
            continue
        # a digit cut by the frame edge cannot be read reliably
        if x0 == 0 or y0 == 0 or x1 == W or y1 == H:
            continue
        sub = labels[y0:y1, x0:x1]
        m = np.isin(sub, ids[members])
        out.append(Candidate(box=(x0, y0, w, h), mask=m))
    return sort_reading_order(out)


def reading_rows(boxes: Sequence[Sequence[float]]) -> list[list[int]]:
    """Indices of ``boxes`` (x, y, w, h) grouped in rows top to bottom, each row left to
    right. A box joins a row when its centre lies in the row's vertical band (or within
    half a median digit height of its middle), as a reader's eye would."""
    order = sorted(range(len(boxes)), key=lambda i: boxes[i][1] + boxes[i][3] / 2)
    rows: list[list[int]] = []
    for i in order:
        cy = boxes[i][1] + boxes[i][3] / 2
        if rows:
            last = rows[-1]
            ry0 = min(boxes[j][1] for j in last)
            ry1 = max(boxes[j][1] + boxes[j][3] for j in last)
            mh = float(np.median([boxes[j][3] for j in last]))
            if ry0 <= cy <= ry1 or abs(cy - (ry0 + ry1) / 2) < 0.5 * mh:
                last.append(i)
                continue
        rows.append([i])
    return [sorted(row, key=lambda j: boxes[j][0]) for row in rows]


def sort_reading_order(cands: list[Candidate]) -> list[Candidate]:
    """Candidates in reading order (see :func:`reading_rows`)."""
    rows = reading_rows([c.box for c in cands])
    return [cands[i] for row in rows for i in row]


def segment(frame: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> tuple[np.ndarray, list[Candidate]]:
    """``(ink map, candidates)`` for a BGR or gray frame."""
    ink = ink_map(to_gray(frame), cfg)
    return ink, find_candidates(binarize(ink, cfg), cfg)
