"""Frame -> candidate digit boxes (and each one's ink mask).

Stages, each a pure function of its inputs:

1. ``ink_map``: grayscale, then divide by a smooth estimate of the paper's brightness,
   so shadows, gradients and tinted paper all become "paper = 0"; ink darkness is
   relative to the paper around it (uint8, 255 = black ink).
2. ``binarize``: a hysteresis threshold on that map (weak ink kept only when connected
   to strong ink), which keeps faint pencil strokes attached to a digit while dropping
   paper texture, and removes long ruled / grid lines, bridging the gaps they leave.
3. ``find_candidates``: connected components, fragments of one digit merged (a 5's
   detached bar, a broken 4), then components kept when digit-like by size relative to
   the frame, aspect ratio and ink density.

Beside them: ``paper_mask`` (the sheet, when a desk shows around it), and the
hypotheses the recognizer classifies on top of the candidates: ``cut_lattice`` (ways
to split a blob of touching digits) and ``piece_pairs`` (pairs that may be one broken
digit).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, ContextManager, Sequence, TypeVar

import cv2
import numpy as np

from realtime import native

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentConfig:
    # background estimate: grey closing at 1/bg_scale resolution, wider than thick strokes
    bg_scale: int = 4
    bg_kernel: int = 9
    # Ink darkness is a fraction of the local paper brightness. A component is ink when
    # it reaches ``strong`` somewhere; its pixels down to ``weak`` belong to it. Both
    # adapt per frame (Otsu between paper and ink, above the paper's noise) within these
    # bounds, so faint pencil under blur is found and dark ink is not bloated.
    weak: float = 0.16
    strong: float = 0.32
    min_strong: float = 0.13
    noise_k: float = 5.0  # weak threshold at least this many paper-noise sigmas
    min_height_px: int = 12
    min_height_frac: float = 0.02  # of the frame's shorter side
    max_height_frac: float = 0.7
    min_aspect: float = 0.06  # width / height; a "1" is very narrow
    # wider components are kept as possibly touching digits, for the recognizer to split:
    # from split_min_aspect a blob is also tried as a lattice of cuts (touching digits
    # overlap, so a pair can be as narrow as one wide digit)
    # (five touching digits, slanted and overlapping, make a blob up to ~4.5x as wide as
    # tall; rendered chains, seeds 100-111: one such number was dropped whole at 3.4)
    max_aspect: float = 5.0
    split_min_aspect: float = 0.9
    # a blob may still be read whole up to this aspect (sheared or slanted 2s, 5s and 7s
    # are wide); beyond it only a split is read
    whole_max_aspect: float = 1.7
    # a part of a touching blob spans at least this share of the blob's height (the
    # digits of one number are written at about one size)
    part_min_height: float = 0.55
    min_density: float = 0.06  # ink pixels / box area
    # a solid blob is not a digit, but a 1 drawn with a marker is a solid bar up to about
    # half as wide as it is tall (found on rendered thick-pen 1s, seed 7)
    max_density: float = 0.9  # only checked on boxes wider than max_density_aspect
    max_density_aspect: float = 0.5
    # a straight run of ink longer than this share of the frame is a ruled or grid line;
    # digits up to ~160 px never have strokes that long at 640 px and up
    line_frac: float = 0.2
    line_max_px: int = 3  # printed rules binarize at most this thick
    find_paper: bool = True  # ignore everything outside the sheet when a desk is visible
    merge_overlap: float = 0.5  # x-overlap (of the narrower box) for fragments to merge
    merge_height: float = 1.45  # merged height at most this times the taller fragment


@dataclass
class Candidate:
    """A digit-like component: ``box`` (x, y, w, h) in frame pixels, tight around its ink,
    and ``mask`` (bool [h, w]) of the pixels that belong to it."""

    box: tuple[int, int, int, int]
    mask: np.ndarray


def to_gray(frame: np.ndarray) -> np.ndarray:
    """Luma for display-like grayscale (BGR, BGRA or gray in)."""
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def ink_gray(frame: np.ndarray) -> np.ndarray:
    """The per-pixel median of B, G and R: the channel that separates ink from paper.

    Coloured inks are dark in at least two channels (red ink in G and B, blue ink in G
    and R) and black or pencil in all three, so their median is dark, near black ink's
    contrast; printed ruled lines are dark in only one (light-blue rules in R, a red
    margin in G and B), so their median stays as faint as in luma. Luma would make red
    and blue ink as faint as the rules.
    """
    if frame.ndim == 2:
        return frame
    # split() copies each channel contiguous once; min/max on strided views copy per call
    b, g, r = cv2.split(frame)[:3]
    return cv2.max(cv2.min(b, g), cv2.min(cv2.max(b, g), r))


@lru_cache(maxsize=8)
def _gaussian_kernel(sigma: float) -> np.ndarray:
    # the size GaussianBlur picks for a uint8 image
    return cv2.getGaussianKernel(int(round(sigma * 6 + 1)) | 1, sigma)


def shrink(img: np.ndarray, f: int) -> np.ndarray:
    """``img`` averaged over ``f`` x ``f`` blocks (what ``INTER_AREA`` does). For a power
    of two that divides the size, repeated 2x2 halvings with ``INTER_LINEAR`` (exactly a
    2x2 mean at that factor, and SIMD-optimized) give the same result to a grey level,
    ~5x faster than OpenCV's uint8 ``INTER_AREA``."""
    h, w = img.shape[:2]
    if f & (f - 1) or w % f or h % f:
        return cv2.resize(img, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    while f > 1:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_LINEAR)
        f //= 2
    return img


_BYTE_SUM = np.uint64(0x0101010101010101)


def _squeeze_count(mask: np.ndarray, squeeze: int, horizontal: bool, at_least: int) -> np.ndarray:
    """0/255 mask, ``squeeze`` times smaller along one axis: 255 where at least
    ``at_least`` of the ``squeeze`` pixels it covers are set in ``mask`` (0/255)."""
    h, w = mask.shape
    n = w if horizontal else h
    kernel = native.compiled("squeeze8") if squeeze == 8 and h % 8 == 0 and w % 8 == 0 else None
    if kernel is not None:
        return kernel(np.ascontiguousarray(mask).view(np.uint64), horizontal, at_least)
    if squeeze == 8 and n % 8 == 0:
        ones = np.ascontiguousarray(mask >> 7)
        if horizontal:
            # 8 neighbouring 0/1 bytes are one uint64; multiplying by 0x0101.. sums them
            # into the top byte: a per-row block count without a strided reduction
            count = ((ones.view(np.uint64) * _BYTE_SUM) >> np.uint64(56)).astype(np.uint8)
        else:
            count = ones.reshape(h // 8, 8, w).sum(axis=1, dtype=np.uint8)
        return np.where(count >= at_least, np.uint8(255), np.uint8(0))
    size = (max(1, w // squeeze), h) if horizontal else (w, max(1, h // squeeze))
    mean = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
    _, out = cv2.threshold(mean, 255 * (at_least - 0.5) / squeeze, 255, cv2.THRESH_BINARY)
    return out


def grow(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` enlarged to ``size`` (w, h) by repeating pixels (``INTER_NEAREST``); a plain
    row/column repeat when the factors are whole numbers (row repeats are memory copies)."""
    w, h = size
    sh, sw = img.shape[:2]
    if h % sh or w % sw:
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST)
    if h != sh:
        img = np.repeat(img, h // sh, axis=0)
    if w == 8 * sw and img.dtype == np.uint8:
        # each byte times 0x0101..01 as a uint64 is that byte 8 times: 5x faster than a
        # repeat along the last axis
        return np.multiply(img, _BYTE_SUM, dtype=np.uint64).view(np.uint8)
    if w != sw:
        img = np.repeat(img, w // sw, axis=1)
    return np.ascontiguousarray(img)


def reduce_gray(gray: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> np.ndarray:
    """``gray`` reduced ``bg_scale`` times (area-averaged): shared by :func:`ink_map` and
    :func:`paper_mask`, which both look at the frame's large-scale light."""
    return shrink(gray, max(1, cfg.bg_scale))


def ink_map(gray: np.ndarray, cfg: SegmentConfig = SegmentConfig(), reduced: np.ndarray | None = None) -> np.ndarray:
    """Ink darkness relative to the local paper brightness, uint8: ``255 * (1 - gray /
    paper)``, so 0 is paper and 255 black ink (uint8 rather than float: every later pixel
    operation on it is 2-4x cheaper, and a camera's 8 bits hold no finer information)."""
    h, w = gray.shape
    small = reduce_gray(gray, cfg) if reduced is None else reduced
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (cfg.bg_kernel, cfg.bg_kernel))
    # a grey closing wider than any stroke removes the ink, leaving the paper's light. A
    # plain max filter would too, but it also carries bright paper a kernel's width
    # across every shadow's edge, and the shaded strip then reads as ink: false digits
    # along shadows, and digits lost in the dark strip (rendered scenes, seed 7:
    # precision 98.45% -> 98.85%, read correctly 95.47% -> 95.43%)
    bg = cv2.morphologyEx(small, cv2.MORPH_CLOSE, k)
    # sepFilter2D with GaussianBlur's own kernel: the same result (within one grey level)
    # ~6x faster than GaussianBlur's bit-exact uint8 path for a kernel this wide
    g1d = _gaussian_kernel(cfg.bg_kernel / 2)
    bg = cv2.sepFilter2D(bg, -1, g1d, g1d, borderType=cv2.BORDER_REFLECT_101)
    bg = cv2.resize(cv2.max(bg, 16), (w, h), interpolation=cv2.INTER_LINEAR)
    g = cv2.GaussianBlur(gray, (3, 3), 0)
    # 255 * gray / paper saturates at 255 where the pixel is at least as bright as paper
    return cv2.bitwise_not(cv2.divide(g, bg, scale=255))


def paper_mask(gray: np.ndarray, scale: int = 8, min_contrast: float = 35.0,
               min_step_share: float = 0.6, reduced: np.ndarray | None = None) -> np.ndarray | None:
    """The sheet of paper, when a darker desk is visible around it: uint8 mask (255 =
    paper, its edge trimmed), or ``None`` when the frame shows paper only.

    The paper is the largest bright region (Otsu on a 1/``scale`` image), filled to its
    convex hull (a sheet is a convex quadrilateral; ink and shadows make holes). It is
    trusted only when it is much brighter than the rest AND its border is the sheet's
    edge: across at least ``min_step_share`` of the border, the frame's brightness steps
    down within a few pixels (see :func:`_border_steps`). A soft shadow across a sheet
    that fills the frame also splits bright from dark, but over tens of pixels, and must
    not cut the shaded digits away. A stretch of border without that step between two
    stretches with it (a shadow across one of the sheet's corners) is replaced by the
    corner where the sheet's two edges meet. ``reduced``: ``gray`` already reduced (see
    :func:`reduce_gray`), to reduce from instead of the full frame.
    """
    h, w = gray.shape
    sw, sh = max(8, w // scale), max(8, h // scale)
    # from the already reduced copy when given (4x fewer pixels to average)
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
    frac = n_in / filled.size
    if not 0.1 <= frac <= 0.96:
        return None
    # the means as exact integer sums over counts (what numpy's means give, without
    # boolean indexing)
    total, s_in = int(small.sum(dtype=np.int64)), int(np.multiply(small, filled).sum(dtype=np.int64))
    inside, outside = s_in / n_in, (total - s_in) / (filled.size - n_in)
    step = inside - outside
    if step < min_contrast or cv2.countNonZero(comp) < 0.8 * n_in:
        return None
    pts = hull[:, 0, :].astype(np.float64)
    shares, counts = _border_steps(gray, pts, (w / sw, h / sh), 0.4 * step)
    seen = counts > 0
    if counts.sum() < 8 or float(np.dot(shares, counts)) < min_step_share * counts.sum():
        return None
    sharp = ~seen | (shares >= 0.5)
    if not sharp.all():
        hull = _complete_corners(pts, sharp, (sw, sh))
        filled = np.zeros_like(comp)
        cv2.fillConvexPoly(filled, hull, 1)
    # trim the paper's own edge (it binarizes as a long line) by a cell
    filled = cv2.erode(filled, np.ones((3, 3), np.uint8))
    return grow(filled * 255, (w, h))


def _border_steps(gray: np.ndarray, pts: np.ndarray, cell: tuple[float, float], min_step: float,
                  half: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Per edge of a convex polygon (``pts``, vertices in cells of ``cell`` frame pixels):
    the share of brightness profiles across it, one every ~12 px, ``half`` px to either
    side in the full frame, that step down by at least ``min_step`` from inside to out
    within a few pixels (the 20-80% rise over at most half the profile's ends' distance),
    and the number of profiles (0 for an edge along the frame's border).

    A sheet on a desk steps down all along its edge, even under blur; a shadow's edge
    rises over tens of pixels, and a row of digits along a shadow shows dips, not steps.
    """
    H, W = gray.shape
    fx, fy = cell
    xy = (pts + 0.5) * (fx, fy)
    kernel = native.compiled("steps")
    if kernel is not None:
        return kernel(gray, np.ascontiguousarray(xy), float(fx), float(fy), float(min_step), int(half))
    nxt = np.roll(xy, -1, axis=0)
    k = len(xy)
    vec = nxt - xy
    length = np.hypot(vec[:, 0], vec[:, 1])
    lo, hi = np.minimum(xy, nxt), np.maximum(xy, nxt)
    border = (hi[:, 0] <= fx) | (hi[:, 1] <= fy) | (lo[:, 0] >= W - fx) | (lo[:, 1] >= H - fy)
    use = ~border & (length >= 1)
    counts = np.where(use, np.maximum(1, (length / 12).astype(np.int64)) + 1, 0)
    shares = np.zeros(k)
    if not counts.any():
        return shares, counts
    # one profile every ~12 px along each edge, from 10% to 90% of its length, all at once
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
    prof = gray[ys, xs].astype(np.float64)
    ins = np.sort(prof[:, :8], axis=1)[:, 3:5].sum(axis=1) / 2  # medians of 8
    out = np.sort(prof[:, -8:], axis=1)[:, 3:5].sum(axis=1) / 2
    rise = ins - out
    r = np.maximum(rise, 1.0)[:, None]
    above = prof - out[:, None]
    width = ((above > 0.2 * r) & (above < 0.8 * r)).sum(axis=1)
    ok = (rise >= min_step) & (width <= half // 2)
    shares = np.bincount(edge, weights=ok, minlength=k) / np.maximum(counts, 1)
    return shares, counts


def _complete_corners(pts: np.ndarray, sharp: np.ndarray, size: tuple[int, int]) -> np.ndarray:
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


def _long_runs(mask: np.ndarray, length: int, horizontal: bool, squeeze: int = 8) -> np.ndarray | None:
    """Pixels of ``mask`` on straight runs at least ``length`` long along one axis
    (``None`` when there are none).

    The mask is first squeezed ``squeeze`` times along that axis (averaging), so a line
    stays a full run while a crossing stroke fades; the opening then needs a kernel
    ``squeeze`` times shorter on ``squeeze`` times fewer pixels: ~64x cheaper than a
    full-resolution opening with a kernel a fifth of the frame long.
    """
    h, w = mask.shape
    # faint rules binarize as dashes: a quarter of a cell is enough, and short gaps close
    small = _squeeze_count(mask, squeeze, horizontal, max(1, squeeze // 4))
    if horizontal:
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, length // squeeze), 1))
    else:
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(3, length // squeeze)))
    bridge = (3, 1) if horizontal else (1, 3)
    small = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, bridge))
    opened = cv2.morphologyEx(small, cv2.MORPH_OPEN, kernel)
    if not cv2.hasNonZero(opened):
        return None
    return cv2.bitwise_and(grow(opened, (w, h)), mask)


def _without(mask: np.ndarray, drop: np.ndarray | None) -> np.ndarray:
    """``mask`` with the pixels set in ``drop`` cleared (``drop`` may be ``None``: none)."""
    return mask if drop is None else cv2.bitwise_and(mask, cv2.bitwise_not(drop))


def remove_lines(mask: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> np.ndarray:
    """Drop long horizontal / vertical runs (ruled and grid lines), then bridge the gaps
    they leave in strokes that crossed them."""
    h, w = mask.shape
    horiz = _long_runs(mask, max(40, int(cfg.line_frac * w)), True)
    vert = _long_runs(mask, max(40, int(cfg.line_frac * h)), False)
    if horiz is None and vert is None:
        return mask
    # grow the line mask a pixel so anti-aliased line edges go too
    k3 = np.ones((3, 3), np.uint8)
    h0 = None if horiz is None else cv2.dilate(horiz, k3)
    v0 = None if vert is None else cv2.dilate(vert, k3)
    # a printed rule is thin; where the ink across it is thicker, a stroke crosses or
    # runs along it: keep those pixels (a 0 tangent to a rule would otherwise lose its top)
    # (the crossing lines of a grid are not strokes: they are left out of that test)
    t = cfg.line_max_px + 1
    horiz = vert = None
    if h0 is not None:
        thick = cv2.morphologyEx(_without(mask, v0), cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, t)))
        horiz = _without(h0, thick)
        horiz = horiz if cv2.hasNonZero(horiz) else None
    if v0 is not None:
        thick = cv2.morphologyEx(_without(mask, h0), cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (t, 1)))
        vert = _without(v0, thick)
        vert = vert if cv2.hasNonZero(vert) else None
    out = _without(_without(mask, horiz), vert)
    # a stroke cut by a horizontal line leaves a vertical gap, and vice versa; bridged
    # only across the line that made the gap: along it, closing would restore the rule
    # between two neighbouring digits and join them (ruled paper needs one closing only)
    repaired = out
    if horiz is not None:
        bridged_v = cv2.morphologyEx(out, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 7)))
        repaired = cv2.bitwise_or(repaired, cv2.bitwise_and(bridged_v, horiz))
    if vert is not None:
        bridged_h = cv2.morphologyEx(out, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (7, 1)))
        repaired = cv2.bitwise_or(repaired, cv2.bitwise_and(bridged_h, vert))
    return repaired


def _hist_median(hist: np.ndarray) -> float:
    c = np.cumsum(hist)
    return float(np.searchsorted(c, 0.5 * c[-1]))


def _otsu(hist: np.ndarray) -> float:
    """Otsu's threshold of a 256-bin histogram (class 0 = levels <= t), as OpenCV's."""
    p = hist / hist.sum()
    levels = np.arange(len(hist), dtype=np.float64)
    w0 = np.cumsum(p)
    mu = np.cumsum(p * levels)
    w1 = 1.0 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * w0 - mu) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1
    return float(np.argmax(between))


def ink_thresholds(ink: np.ndarray, cfg: SegmentConfig = SegmentConfig(),
                   region: np.ndarray | None = None) -> tuple[float, float]:
    """``(weak, strong)`` for this frame, as fractions of full darkness: Otsu's split
    between paper and ink, clamped to ``[min_strong, strong]``, with ``weak`` half of it
    but above the paper's noise (robust sigma from the median absolute deviation).

    Everything comes from one 256-bin histogram of the uint8 ink map (inside ``region``
    when given).
    """
    # every 4th pixel each way: the same statistics, 16x cheaper
    sub = ink[::4, ::4]
    if region is not None:
        sub = sub[region[::4, ::4] > 0]
    hist = np.bincount(sub.ravel(), minlength=256).astype(np.float64)
    if hist.sum() < 100:
        return cfg.weak, cfg.strong
    med = _hist_median(hist)
    dist = np.abs(np.arange(256) - med).astype(np.int64)
    mad = _hist_median(np.bincount(dist, weights=hist, minlength=256))
    sigma = 1.4826 * mad
    cut = int(np.floor(max(0.06 * 255, med + 3 * sigma)))
    cand = hist.copy()
    cand[: cut + 1] = 0
    if cand.sum() < 50:
        return cfg.weak, cfg.strong
    strong = float(np.clip(_otsu(cand) / 255.0, cfg.min_strong, cfg.strong))
    weak = float(np.clip(max(0.5 * strong, (med + cfg.noise_k * sigma) / 255.0), 0.06, cfg.weak))
    return min(weak, 0.8 * strong), strong


def binarize(ink: np.ndarray, cfg: SegmentConfig = SegmentConfig(),
             thresholds: tuple[float, float] | None = None, region: np.ndarray | None = None) -> np.ndarray:
    """uint8 mask (255 = ink at least ``weak`` dark, inside ``region`` when given), ruled
    and grid lines removed.

    The other half of the hysteresis (a component must reach ``strong`` somewhere) is
    applied by :func:`find_candidates`, which labels the components anyway: one
    connected-components pass per frame instead of two.
    """
    weak_t = thresholds[0] if thresholds is not None else cfg.weak
    _, weak = cv2.threshold(ink, weak_t * 255, 255, cv2.THRESH_BINARY)
    if region is not None:
        # before line removal: the sheet's edge and desk texture are not ruled lines
        weak = cv2.bitwise_and(weak, region)
    return remove_lines(weak, cfg)


def _merge_fragments(boxes: np.ndarray, cfg: SegmentConfig, areas: np.ndarray | None = None) -> np.ndarray:
    """Group indices: pieces stacked vertically that together still look like one digit."""
    n = len(boxes)
    parent = np.arange(n)
    if n < 2:
        return parent
    x, y, w, h = (boxes[:, i].astype(np.float64) for i in range(4))
    kernel = native.compiled("merge")
    if kernel is not None:
        a = np.zeros(n) if areas is None else areas.astype(np.float64)
        return kernel(x, y, w, h, a, areas is not None, float(cfg.merge_overlap), float(cfg.merge_height))
    ox = np.minimum(x[:, None] + w[:, None], x[None] + w[None]) - np.maximum(x[:, None], x[None])
    overlap = ox / np.maximum(np.minimum(w[:, None], w[None]), 1)
    top = np.minimum(y[:, None], y[None])
    bottom = np.maximum(y[:, None] + h[:, None], y[None] + h[None])
    merged_h = bottom - top
    taller = np.maximum(h[:, None], h[None])
    gap = np.maximum(y[:, None], y[None]) - np.minimum(y[:, None] + h[:, None], y[None] + h[None])
    ok = (overlap >= cfg.merge_overlap) & (merged_h <= cfg.merge_height * taller) & (gap <= 0.35 * taller)
    if areas is not None:
        # a real piece (a 5's bar, half a broken 4) is sizeable or wide; a dot left by a
        # grid crossing or paper speck is neither
        a = areas.astype(np.float64)
        small_a, large_a = np.minimum(a[:, None], a[None]), np.maximum(a[:, None], a[None])
        narrow = np.minimum(w[:, None], w[None]) / np.maximum(np.maximum(w[:, None], w[None]), 1)
        ok &= (small_a >= 0.05 * large_a) | (narrow >= 0.4)
    np.fill_diagonal(ok, False)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # The height limit holds for the merged group, not only pairwise: chained through a
    # speck (a grid crossing, a dot) between them, two digits of consecutive rows would
    # otherwise become one. Closest pairs merge first.
    g_top, g_bottom, g_tall = y.copy(), y + h, h.copy()
    ii, jj = np.nonzero(np.triu(ok))
    for k in np.argsort(gap[ii, jj], kind="stable"):
        ri, rj = find(int(ii[k])), find(int(jj[k]))
        if ri == rj:
            continue
        t, b, tall = min(g_top[ri], g_top[rj]), max(g_bottom[ri], g_bottom[rj]), max(g_tall[ri], g_tall[rj])
        if b - t > cfg.merge_height * tall:
            continue
        r, o = min(ri, rj), max(ri, rj)
        parent[o] = r
        g_top[r], g_bottom[r], g_tall[r] = t, b, tall
    return np.array([find(i) for i in range(n)])


def find_candidates(mask: np.ndarray, cfg: SegmentConfig = SegmentConfig(),
                    ink: np.ndarray | None = None, strong: float | None = None) -> list[Candidate]:
    """Digit-like components of a binary ink mask, fragments merged, in reading order.

    With ``ink`` given, a candidate must reach ``strong`` darkness somewhere (default:
    ``cfg.strong``): faint paper texture never becomes a digit on its own.
    """
    H, W = mask.shape
    # Labelling costs per pixel, and ink often covers only part of the frame (the sheet
    # in a desk scene): label only the box around it. Its corner is put on even
    # coordinates, where Grana's 2x2 blocks fall as in the whole frame, so the labels are
    # numbered exactly as there.
    bx, by, bw, bh = cv2.boundingRect(mask)
    if bw == 0:
        return []
    ox, oy = bx & ~1, by & ~1
    # Grana's algorithm: the same labels and stats as the default, 3x faster with stats
    n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        mask[oy : by + bh, ox : bx + bw], 8, cv2.CV_32S, cv2.CCL_GRANA)
    if n <= 1:
        return []
    stats = stats[1:]
    stats[:, cv2.CC_STAT_LEFT] += ox
    stats[:, cv2.CC_STAT_TOP] += oy
    ids = np.arange(1, n)
    min_h = max(cfg.min_height_px, cfg.min_height_frac * min(H, W))
    # specks cannot become digits even when merged; drop them before pairing
    big = (stats[:, cv2.CC_STAT_AREA] >= 4) & (stats[:, cv2.CC_STAT_HEIGHT] >= 3)
    big &= stats[:, cv2.CC_STAT_HEIGHT] >= 0.25 * min_h
    # nor can a component taller than any digit: with no sheet found, the desk around the
    # paper binarizes into one ring whose box holds the whole sheet, and merged with it
    # as a "fragment" every digit big enough to pass the merge's area test vanished
    big &= stats[:, cv2.CC_STAT_HEIGHT] <= cfg.max_height_frac * H
    stats, ids = stats[big], ids[big]
    if len(ids) == 0:
        return []
    boxes = stats[:, :4].astype(np.int64)
    groups = _merge_fragments(boxes, cfg, stats[:, cv2.CC_STAT_AREA])
    # each group's box, area and shape tests at once; only survivors get a mask
    gid, inv = np.unique(groups, return_inverse=True)
    k = len(gid)
    x0 = np.full(k, W, np.int64)
    y0 = np.full(k, H, np.int64)
    x1 = np.zeros(k, np.int64)
    y1 = np.zeros(k, np.int64)
    np.minimum.at(x0, inv, boxes[:, 0])
    np.minimum.at(y0, inv, boxes[:, 1])
    np.maximum.at(x1, inv, boxes[:, 0] + boxes[:, 2])
    np.maximum.at(y1, inv, boxes[:, 1] + boxes[:, 3])
    area = np.bincount(inv, weights=stats[:, cv2.CC_STAT_AREA], minlength=k)
    w, h = x1 - x0, y1 - y0
    aspect = w / h
    density = area / (w * h)
    keep = (h >= min_h) & (h <= cfg.max_height_frac * H)
    keep &= (aspect >= cfg.min_aspect) & (aspect <= cfg.max_aspect)
    keep &= (density >= cfg.min_density) & ~((aspect > cfg.max_density_aspect) & (density > cfg.max_density))
    # a digit cut by the frame edge cannot be read reliably
    keep &= (x0 > 0) & (y0 > 0) & (x1 < W) & (y1 < H)
    peak = 255 * (cfg.strong if strong is None else strong)
    kernel = native.compiled("group_masks")
    if kernel is not None:
        kept = np.nonzero(keep)[0]
        slot = np.full(k, -1, np.int64)
        slot[kept] = np.arange(len(kept))
        group = np.full(n, -1, np.int64)
        group[ids] = slot[inv]
        boxes_k = np.stack([x0[kept], y0[kept], x1[kept], y1[kept]], axis=1)
        # without an ink map every group passes (a negative peak)
        flat, offsets, dark = kernel(labels, group, ox, oy, boxes_k,
                                     np.zeros((1, 1), np.uint8) if ink is None else ink, -1.0 if ink is None else peak)
        out = []
        for (bx0, by0, bx1, by1), o, ok in zip(boxes_k.tolist(), offsets.tolist(), dark.tolist()):
            if ok:
                bw, bh = bx1 - bx0, by1 - by0
                out.append(Candidate(box=(bx0, by0, bw, bh), mask=flat[o : o + bw * bh].reshape(bh, bw)))
        return sort_reading_order(out)
    # each group's member ids, from one stable sort instead of a search per group
    order = np.argsort(inv, kind="stable")
    first = np.searchsorted(inv[order], np.arange(k + 1))
    out: list[Candidate] = []
    for j in np.nonzero(keep)[0].tolist():
        members = ids[order[first[j] : first[j + 1]]]
        bx0, by0, bx1, by1 = int(x0[j]), int(y0[j]), int(x1[j]), int(y1[j])
        sub = labels[by0 - oy : by1 - oy, bx0 - ox : bx1 - ox]
        m = sub == members[0] if len(members) == 1 else np.isin(sub, members)
        # the darkest pixel of the component: one masked OpenCV call, no copy
        if ink is not None and cv2.minMaxLoc(ink[by0:by1, bx0:bx1], m.view(np.uint8))[1] < peak:
            continue
        out.append(Candidate(box=(bx0, by0, bx1 - bx0, by1 - by0), mask=m))
    return sort_reading_order(out)


def reading_rows(boxes: Sequence[Sequence[float]]) -> list[list[int]]:
    """Indices of ``boxes`` (x, y, w, h) grouped in rows top to bottom, each row left to
    right. A box joins a row when its centre lies in the row's vertical band (or within
    half a typical digit height of its middle), as a reader's eye would."""
    order = sorted(range(len(boxes)), key=lambda i: boxes[i][1] + boxes[i][3] / 2)
    rows: list[list[int]] = []
    band: list[list[float]] = []  # per row: top, bottom, sum of heights
    for i in order:
        x, y, w, h = boxes[i][:4]
        cy = y + h / 2
        if rows:
            top, bottom, hsum = band[-1]
            mean_h = hsum / len(rows[-1])
            if top <= cy <= bottom or abs(cy - (top + bottom) / 2) < 0.5 * mean_h:
                rows[-1].append(i)
                band[-1] = [min(top, y), max(bottom, y + h), hsum + h]
                continue
        rows.append([i])
        band.append([y, y + h, h])
    return [sorted(row, key=lambda j: boxes[j][0]) for row in rows]


def _cut_points(proj: np.ndarray, h: int, max_cuts: int) -> list[int]:
    """The lattice's cut points (columns, sides included) from a blob's smoothed ink
    profile ``proj`` (see :func:`cut_lattice`)."""
    w = len(proj)
    margin = max(2, int(0.1 * h))
    inner = np.arange(margin, w - margin)
    cuts: list[int] = []
    if len(inner):
        p = proj[inner]
        minima = inner[(p <= proj[inner - 1]) & (p <= proj[inner + 1])]
        spacing = max(2, int(0.12 * h))
        for c in sorted(minima.tolist(), key=lambda c: (proj[c], c)):
            if all(abs(c - o) >= spacing for o in cuts):
                cuts.append(int(c))
            if len(cuts) >= max_cuts:
                break
    return [0, *sorted(cuts), w]


def _profile(mask: np.ndarray) -> np.ndarray:
    """A blob's ink per column, smoothed over 3 columns (float64)."""
    return np.convolve(mask.sum(axis=0).astype(np.float64), np.ones(3) / 3, mode="same")


def lattice_points(cand: Candidate, max_cuts: int = 10) -> list[int]:
    """The columns (relative to the blob's box) of :func:`cut_lattice`'s cut points."""
    return _cut_points(_profile(cand.mask), cand.box[3], max_cuts)


def cut_lattice(cand: Candidate, cfg: SegmentConfig = SegmentConfig(), max_cuts: int = 10,
                ) -> tuple[int, list[tuple[int, int, Candidate]]]:
    """Over-segment a blob that may hold touching digits: ``(n_points, segments)``.

    Cut points are the blob's two sides and the columns where its ink profile has a local
    minimum (the thin joins between touching digits), the lowest ones first, a stroke's
    width apart. A minimum is a valley, no higher than the columns on either side: a
    profile that merely rises from the blob's side inward would offer a cut that shaves
    a sliver off one digit (read as a confident "1"). Every stretch between two cut
    points that is as wide as a digit can be (from a narrow 1 to a wide 0) is a segment ``(i, j, part)``: points ``i < j`` and the
    part's pixels with a tight box. The recognizer classifies all segments of a frame in
    one batch and picks the chain of segments from the first point to the last that it
    reads most confidently, so the number of digits in the blob is decided by the
    classifier, not guessed from the blob's width.
    """
    x, y, w, h = cand.box
    proj = _profile(cand.mask)
    kernel = native.compiled("lattice")
    if kernel is not None:
        # the same steps compiled (given this very profile: equally deep minima then
        # tie, or not, exactly as here)
        n_points, rows = kernel(cand.mask.view(np.uint8), proj, cfg.part_min_height, max_cuts)
        return n_points, [(i, j, Candidate(box=(x + x0, y + y0, x1 - x0, y1 - y0), mask=cand.mask[y0:y1, x0:x1]))
                          for i, j, x0, y0, x1, y1 in rows.tolist()]
    points = _cut_points(proj, h, max_cuts)
    return len(points), lattice_stretches(cand, points, max(2, int(0.1 * h)), 1.25 * h, cfg.part_min_height)


def lattice_stretches(cand: Candidate, points: Sequence[int], min_w: float, max_w: float,
                      min_height: float) -> list[tuple[int, int, Candidate]]:
    """The stretches of a blob between two of its cut ``points`` (columns relative to
    its box, sides included) from ``min_w`` to ``max_w`` px wide, the whole blob left
    out, each as ``(i, j, part)``: points ``i < j`` and the part's pixels with a tight
    box, kept when the part is at least ``min_height`` of the blob's height tall."""
    x, y, w, h = cand.box
    # per column: its first and last ink row (h and -1 for an empty column); per column
    # index: the nearest ink column at or after it, and at or before it. Each stretch's
    # tight box is then a few scalar lookups instead of numpy calls on its pixels.
    has = cand.mask.any(axis=0)
    top = np.where(has, cand.mask.argmax(axis=0), h)
    bottom = np.where(has, h - 1 - cand.mask[::-1].argmax(axis=0), -1)
    cols = np.arange(w)
    next_ink = np.minimum.accumulate(np.where(has, cols, w)[::-1])[::-1].tolist() + [w]
    prev_ink = np.maximum.accumulate(np.where(has, cols, -1)).tolist()
    segs: list[tuple[int, int, Candidate]] = []
    for i in range(len(points)):
        a = points[i]
        # running top and bottom row of the stretches starting at a, one per end point
        ends = [b for b in points[i + 1 :] if b - a <= max_w]
        if not ends:
            continue
        starts = [0, *[b - a for b in ends[:-1]]]
        run_top = np.minimum.reduceat(top[a : ends[-1]], starts).tolist()
        run_bottom = np.maximum.reduceat(bottom[a : ends[-1]], starts).tolist()
        y0, y1 = h, -1
        for k, b in enumerate(ends):
            j = i + 1 + k
            y0, y1 = min(y0, run_top[k]), max(y1, run_bottom[k])
            if b - a < min_w or (i == 0 and j == len(points) - 1):
                continue  # the whole blob is read as it is anyway
            if y1 < 0 or y1 + 1 - y0 < min_height * h:
                continue
            x0, x1 = next_ink[a], prev_ink[b - 1] + 1
            m = cand.mask[y0 : y1 + 1, x0:x1]
            segs.append((i, j, Candidate(box=(x + x0, y + y0, x1 - x0, y1 + 1 - y0), mask=m)))
    return segs


def piece_pairs(boxes: Sequence[Sequence[int]], max_aspect: float = 1.2, max_gap: float = 0.2,
                stack_overlap: float = 0.3, side_overlap: float = 0.6, min_share: float = 0.4,
                ) -> list[tuple[int, int]]:
    """Pairs of candidates that may be two pieces of one broken digit: ``(i, j)``, i < j.

    A digit drawn with a faint or skipping pen can break into pieces that are each
    digit-like: a 3's two bowls stacked, a 0's two sides, a 7's bar above its stem.
    Merging them by geometry alone would also merge digits of consecutive rows and
    neighbours in a number, so this only proposes the pairs; the classifier decides
    (see ``Recognizer``). A pair is proposed when the union of the two boxes is shaped
    like one digit (width at most ``max_aspect`` times its height, the taller piece at
    least ``min_share`` of its height) and the pieces are close (a gap of at most
    ``max_gap`` of the union's height), either stacked (x-overlap at least
    ``stack_overlap`` of the narrower) or side by side (y-overlap at least
    ``side_overlap`` of the shorter). The limits were chosen on the seed-7 scenes.
    """
    if len(boxes) < 2:
        return []
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    x0, y0 = b[:, 0], b[:, 1]
    x1, y1 = x0 + b[:, 2], y0 + b[:, 3]
    ux = np.maximum(x1[:, None], x1[None]) - np.minimum(x0[:, None], x0[None])
    uy = np.maximum(y1[:, None], y1[None]) - np.minimum(y0[:, None], y0[None])
    ox = np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None])  # < 0: a gap
    oy = np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None])
    w, h = b[:, 2], b[:, 3]
    narrower = np.minimum(w[:, None], w[None])
    shorter = np.minimum(h[:, None], h[None])
    taller = np.maximum(h[:, None], h[None])
    shaped = (ux <= max_aspect * uy) & (taller >= min_share * uy)
    stacked = (ox >= stack_overlap * narrower) & (-oy <= max_gap * uy)
    side = (oy >= side_overlap * shorter) & (-ox <= max_gap * uy)
    ok = np.triu(shaped & (stacked | side), 1)
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(ok))]


def merge_pieces(a: Candidate, b: Candidate) -> Candidate:
    """One candidate of two: the union box, and both masks in it."""
    (ax, ay, aw, ah), (bx, by, bw, bh) = a.box, b.box
    x, y = min(ax, bx), min(ay, by)
    w, h = max(ax + aw, bx + bw) - x, max(ay + ah, by + bh) - y
    mask = np.zeros((h, w), bool)
    mask[ay - y : ay - y + ah, ax - x : ax - x + aw] |= a.mask
    mask[by - y : by - y + bh, bx - x : bx - x + bw] |= b.mask
    return Candidate(box=(x, y, w, h), mask=mask)


K = TypeVar("K", int, str)


def _chains(n_points: int, segs: Sequence[tuple[int, int, float] | tuple[int, int, float, int]], min_conf: float,
            bonus: float, start: K, extend: Callable[[K, int, int], K | None], keep: int | None = None,
            ) -> dict[K, tuple[float, list[int]]]:
    """The best chain of segments from point 0 to each key at the last point: dynamic
    programming over the points in order, a chain's key grown by ``extend(key, segment,
    digits)`` (``None``: that chain may not go on). ``keep``: at most this many keys per
    point, the best ones."""
    best: list[dict[K, tuple[float, list[int]]]] = [dict() for _ in range(n_points)]
    best[0][start] = (0.0, [])
    for s in sorted(range(len(segs)), key=lambda s: segs[s][1]):
        i, j, c = segs[s][:3]
        n = int(segs[s][3]) if len(segs[s]) > 3 else 1  # type: ignore[misc]
        if c < min_conf:
            continue
        gain = float(np.log(c)) + bonus * n
        for key, (score, path) in list(best[i].items()):
            k = extend(key, s, n)
            if k is None:
                continue
            if k not in best[j] or score + gain > best[j][k][0]:
                best[j][k] = (score + gain, path + [s])
        if keep is not None and len(best[j]) > keep:
            best[j] = dict(sorted(best[j].items(), key=lambda kv: -kv[1][0])[:keep])
    return best[n_points - 1]


def best_chain(n_points: int, segs: Sequence[tuple[int, int, float] | tuple[int, int, float, int]], min_conf: float = 0.5,
               bonus: float = 0.0, max_parts: int = 8) -> tuple[list[int], float]:
    """The chain of segments from point 0 to point ``n_points - 1`` that the classifier
    believes most: the highest sum of ``log(confidence) + bonus`` (``bonus`` = 0: the
    product of the confidences, so every extra cut must pay for itself; a chunk of a
    digit read as a confident "1" is not enough). Segments below ``min_conf`` are not
    used. ``segs``: ``(i, j, confidence)``, or ``(i, j, confidence, digits)`` for a
    stretch read as several digits at once (it scores ``digits`` bonuses). Returns ``(segment indices, score)``, or
    ``([], -inf)`` when no chain exists."""
    # keyed by the number of digits so far: the best k-digit chain to each point
    ends = _chains(n_points, segs, min_conf, bonus, 0, lambda k, _s, n: k + n if k + n <= max_parts else None)
    if not ends:
        return [], float("-inf")
    score, path = max(ends.values(), key=lambda v: v[0])
    return path, score


def chains_by_reading(n_points: int, segs: Sequence[tuple[int, int, float] | tuple[int, int, float, int]],
                      readings: Sequence[str], min_conf: float = 0.5, bonus: float = 0.0, max_parts: int = 8,
                      keep: int = 64) -> dict[str, tuple[list[int], float]]:
    """:func:`best_chain` per reading: for each digit string the chains spell (``readings``:
    each segment's digits), the best chain that spells it, as ``{reading: (segment
    indices, score)}``. The ``keep`` best readings are kept at each point, which bounds
    the work on a long blob whose lattice spells hundreds."""
    def spell(text: str, s: int, _n: int) -> str | None:
        t = text + readings[s]
        return t if len(t) <= max_parts else None

    ends = _chains(n_points, segs, min_conf, bonus, "", spell, keep)
    return {t: (path, score) for t, (score, path) in ends.items()}


def sort_reading_order(cands: list[Candidate]) -> list[Candidate]:
    """Candidates in reading order (see :func:`reading_rows`)."""
    rows = reading_rows([c.box for c in cands])
    return [cands[i] for row in rows for i in row]


Timer = Callable[[str], ContextManager[Any]]
_UNTIMED = contextlib.nullcontext()


def untimed(_stage: str) -> ContextManager[Any]:
    """The default stage timer: times nothing (see ``benchmarks.speed --stages``)."""
    return _UNTIMED


def segment(frame: np.ndarray, cfg: SegmentConfig = SegmentConfig(), timer: Timer = untimed,
            ) -> tuple[np.ndarray, list[Candidate]]:
    """``(ink map (uint8), candidates)`` for a BGR or gray frame: stages 1-3 in order.
    ``timer(stage)``: a context manager around each stage, for profiling."""
    with timer("ink map"):
        gray = ink_gray(frame)
        reduced = reduce_gray(gray, cfg)
        ink = ink_map(gray, cfg, reduced)
    with timer("sheet"):
        paper = paper_mask(gray, reduced=reduced) if cfg.find_paper else None
    with timer("thresholds"):
        weak, strong = ink_thresholds(ink, cfg, paper)
    with timer("binarize and line removal"):
        mask = binarize(ink, cfg, (weak, strong), paper)
    with timer("components and masks"):
        return ink, find_candidates(mask, cfg, ink, strong)
