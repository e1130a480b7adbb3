"""Where the paper is: the sheet, when a darker desk shows around it (nothing off it is read).

The paper is the largest bright region of a small copy of the frame, filled to its
convex hull (a sheet is a convex quadrilateral; ink and shadows make holes). It is
trusted only when it is much brighter than the rest AND its border is the sheet's edge:
along most of the border the frame's brightness steps down within a few pixels. A soft
shadow across a sheet that fills the frame also splits bright from dark, but over tens
of pixels, and must not cut the shaded digits away. A stretch of border without that
step between two stretches with it (a shadow across one of the sheet's corners) is
replaced by the corner where the sheet's two edges meet.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realtime.imaging import grow


@dataclass(frozen=True)
class SheetConfig:
    enabled: bool = True  # ignore everything outside the sheet when a desk is visible
    scale: int = 8  # the sheet is found on a copy this many times smaller
    min_contrast: float = 35.0  # paper at least this many grey levels brighter than the rest
    min_area: float = 0.1  # the sheet covers at least this share of the frame ...
    max_area: float = 0.96  # ... and at most this (beyond it, the frame shows paper only)
    min_solid: float = 0.8  # the bright region fills at least this share of its hull (else: no sheet)
    max_bright_desk: float = 0.3  # at most this share of the desk is as bright as paper
    min_step_share: float = 0.6  # share of border profiles that must step down like a sheet's edge
    step_frac: float = 0.4  # a profile's step is at least this share of the paper-desk contrast
    sharp_edge: float = 0.5  # an edge whose profiles step this often is the sheet's own edge
    profile_half: int = 20  # px each side of the border a profile reads
    profile_spacing: float = 12.0  # px between profiles along an edge
    min_profiles: int = 8  # fewer profiles (a sheet mostly along the frame's border): no sheet
    edge_trim: float = 1.0  # the paper ends this many cells inside the hull of its bright cells (its edge is a line)


def paper_mask(gray: np.ndarray, cfg: SheetConfig = SheetConfig(), reduced: np.ndarray | None = None,
               ) -> np.ndarray | None:
    """The sheet of paper: uint8 mask (255 = paper, its edge trimmed), or ``None`` when the
    frame shows paper only (or ``cfg.enabled`` is off). ``reduced``: ``gray`` already
    reduced a few times (area-averaged), to reduce from instead of the full frame."""
    if not cfg.enabled:
        return None
    h, w = gray.shape
    sw, sh = max(8, w // cfg.scale), max(8, h // cfg.scale)
    # from the already reduced copy when given (fewer pixels to average)
    src = gray if reduced is None or reduced.shape[1] < sw else reduced
    small = cv2.resize(src, (sw, sh), interpolation=cv2.INTER_AREA)
    _, bright = cv2.threshold(cv2.GaussianBlur(small, (3, 3), 0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    if n <= 1:
        return None
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    comp = (labels == i).astype(np.uint8)
    contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(max(contours, key=cv2.contourArea))
    filled = np.zeros_like(comp)
    cv2.fillConvexPoly(filled, hull, 1)
    n_in = cv2.countNonZero(filled)
    if not cfg.min_area <= n_in / filled.size <= cfg.max_area:
        return None
    # the rest is a desk: dark, not more paper that big dark ink (a close-up's marker
    # stroke) cut off from the largest bright region
    outside = filled.size - n_in
    if cv2.countNonZero(cv2.bitwise_and(bright, bright, mask=1 - filled)) > cfg.max_bright_desk * outside:
        return None
    # the means as exact integer sums over counts (what numpy's means give, without
    # boolean indexing)
    total, s_in = int(small.sum(dtype=np.int64)), int(np.multiply(small, filled).sum(dtype=np.int64))
    step = s_in / n_in - (total - s_in) / (filled.size - n_in)
    if step < cfg.min_contrast or cv2.countNonZero(comp) < cfg.min_solid * n_in:
        return None
    pts = hull[:, 0, :].astype(np.float64)
    shares, counts = border_steps(gray, pts, (w / sw, h / sh), cfg.step_frac * step, cfg)
    seen = counts > 0
    if counts.sum() < cfg.min_profiles or float(np.dot(shares, counts)) < cfg.min_step_share * counts.sum():
        return None
    sharp = ~seen | (shares >= cfg.sharp_edge)
    if not sharp.all():
        hull = complete_corners(pts, sharp, (sw, sh))
        filled = np.zeros_like(comp)
        cv2.fillConvexPoly(filled, hull, 1)
    # the paper as a polygon at the frame's resolution, trimmed inside its edge (which
    # binarizes as a long line): grown from the cells, a slanted edge would be a
    # staircase whose every step holds a sliver of desk, read as a row of 1s along it
    cell = (w / sw, h / sh)
    # a cell's tolerance in the outline: a sheet's hull has a handful of edges, not dozens
    outline = cv2.approxPolyDP(hull, 0.75, True)[:, 0, :].astype(np.float64)
    poly = inset((outline + 0.5) * cell, cfg.edge_trim * max(cell))
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, np.rint(poly * 16).astype(np.int32), 255, cv2.LINE_8, 4)
    return mask


def inset(poly: np.ndarray, margin: float) -> np.ndarray:
    """The convex polygon ``poly`` (k x 2) with every edge moved ``margin`` inwards: the
    polygon clipped by each edge's moved half-plane (exact, whatever the edges' lengths
    and angles). A polygon too small for the margin comes back as it was."""
    if len(poly) < 3 or margin <= 0:
        return poly
    d = np.roll(poly, -1, axis=0) - poly  # edge i runs from vertex i to vertex i + 1
    length = np.hypot(d[:, 0], d[:, 1])
    area = float(np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1) * poly[:, 1]))
    if area == 0:
        return poly
    keep = length > 1e-9
    normal = np.stack([-d[keep, 1], d[keep, 0]], axis=1) / length[keep, None] * np.sign(area)  # into the polygon
    out = poly
    for n, c in zip(normal, np.sum(normal * poly[keep], axis=1) + margin):
        out = _clip(out, n, c)
        if len(out) < 3:
            return poly
    return out


def _clip(pts: np.ndarray, normal: np.ndarray, c: float) -> np.ndarray:
    """The convex polygon ``pts`` cut to the half-plane ``normal . p >= c``."""
    side = pts @ normal - c
    out = []
    for i in range(len(pts)):
        j = (i + 1) % len(pts)
        if side[i] >= 0:
            out.append(pts[i])
        if (side[i] >= 0) != (side[j] >= 0):
            out.append(pts[i] + side[i] / (side[i] - side[j]) * (pts[j] - pts[i]))
    return np.array(out).reshape(-1, 2)


def _profiles(xy: np.ndarray, shape: tuple[int, int], cell: tuple[float, float], cfg: SheetConfig,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where the brightness profiles across a convex polygon's edges lie: per profile its
    edge and its sampling coordinates (rows of ``2 * half + 1`` points from inside out),
    and per edge the number of profiles (0 for an edge along the frame's border)."""
    H, W = shape
    fx, fy = cell
    half = cfg.profile_half
    nxt = np.roll(xy, -1, axis=0)
    k = len(xy)
    vec = nxt - xy
    length = np.hypot(vec[:, 0], vec[:, 1])
    lo, hi = np.minimum(xy, nxt), np.maximum(xy, nxt)
    border = (hi[:, 0] <= fx) | (hi[:, 1] <= fy) | (lo[:, 0] >= W - fx) | (lo[:, 1] >= H - fy)
    use = ~border & (length >= 1)
    counts = np.where(use, np.maximum(1, (length / cfg.profile_spacing).astype(np.int64)) + 1, 0)
    # profiles spread from 10% to 90% of each edge's length, all at once
    edge = np.repeat(np.arange(k), counts)
    first = np.cumsum(counts) - counts
    pos = (np.arange(len(edge)) - first[edge]) / np.maximum(counts[edge] - 1, 1)
    s = 0.1 + 0.8 * pos
    d = vec / np.maximum(length, 1e-9)[:, None]
    normal = np.stack([d[:, 1], -d[:, 0]], axis=1)
    centre = xy.sum(axis=0) / k
    mids = (xy + nxt) / 2 - centre
    outward = mids[:, 0] * normal[:, 0] + mids[:, 1] * normal[:, 1]
    normal[outward < 0] *= -1.0
    mid = xy[edge] + s[:, None] * vec[edge]
    t = np.arange(-half, half + 1, dtype=np.float64)
    xs = np.clip(np.rint(mid[:, :1] + t * normal[edge, :1]), 0, W - 1).astype(np.intp)
    ys = np.clip(np.rint(mid[:, 1:] + t * normal[edge, 1:]), 0, H - 1).astype(np.intp)
    return edge, xs, ys, counts


def border_steps(gray: np.ndarray, pts: np.ndarray, cell: tuple[float, float], min_step: float,
                 cfg: SheetConfig = SheetConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Per edge of a convex polygon (``pts``, vertices in cells of ``cell`` frame pixels):
    the share of brightness profiles across it that step down by at least ``min_step``
    from inside to out within a few pixels (the 20-80% rise over at most half the
    profile's ends' distance), and the number of profiles (0 for an edge along the
    frame's border).

    A sheet on a desk steps down all along its edge, even under blur; a shadow's edge
    rises over tens of pixels, and a row of digits along a shadow shows dips, not steps.
    """
    xy = (pts + 0.5) * cell
    edge, xs, ys, counts = _profiles(xy, gray.shape, cell, cfg)
    shares = np.zeros(len(xy))
    if not counts.any():
        return shares, counts
    prof = gray[ys, xs].astype(np.float64)
    ins = np.sort(prof[:, :8], axis=1)[:, 3:5].sum(axis=1) / 2  # medians of 8
    out = np.sort(prof[:, -8:], axis=1)[:, 3:5].sum(axis=1) / 2
    rise = ins - out
    r = np.maximum(rise, 1.0)[:, None]
    above = prof - out[:, None]
    width = ((above > 0.2 * r) & (above < 0.8 * r)).sum(axis=1)
    ok = (rise >= min_step) & (width <= cfg.profile_half // 2)
    shares = np.bincount(edge, weights=ok, minlength=len(xy)) / np.maximum(counts, 1)
    return shares, counts


def complete_corners(pts: np.ndarray, sharp: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The convex polygon ``pts`` with every run of soft edges (``~sharp``) between two
    sharp ones replaced by the point where the sharp edges' lines meet, when that point
    lies in the frame (``size``: width, height in the polygon's units)."""
    k = len(pts)
    sw, sh = size
    out: list[np.ndarray] = []
    first = int(np.argmax(sharp))
    e = 0
    while e < k:
        a = (first + e) % k
        out.append(pts[a])
        r = e + 1
        while r < k and not sharp[(first + r) % k]:
            r += 1
        if sharp[a] and r > e + 1:
            b = (first + r) % k
            p1, d1 = pts[a], pts[(a + 1) % k] - pts[a]
            p3, d2 = pts[b], pts[(b + 1) % k] - pts[b]
            den = d1[0] * d2[1] - d1[1] * d2[0]
            if abs(den) > 1e-9:
                corner = p1 + ((p3[0] - p1[0]) * d2[1] - (p3[1] - p1[1]) * d2[0]) / den * d1
                if -1 <= corner[0] <= sw and -1 <= corner[1] <= sh:
                    out.append(corner)
                    e = r
                    continue
        e += 1
    return cv2.convexHull(np.rint(np.array(out)).astype(np.int32).reshape(-1, 1, 2))
