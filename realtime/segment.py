"""Frame -> blobs of ink on the paper, each with its mask.

Steps, each a pure function of its inputs and :class:`SegmentConfig`:

1. :func:`ink_map`: divide the ink channel by a smooth estimate of the paper's
   brightness, so shadows, gradients and tinted paper all become "paper = 0"; ink
   darkness is relative to the paper around it (uint8, 255 = black ink).
2. :func:`ink_thresholds` and :func:`binarize`: a hysteresis threshold on that map
   (weak ink kept only when connected to strong ink), which keeps faint pencil strokes
   attached to a digit while dropping paper texture, and :func:`remove_lines`, which
   drops long ruled / grid lines and bridges the gaps they leave.
3. :func:`find_blobs`: connected components, fragments of one digit merged (a 5's
   detached bar, a broken 4), then components kept when digit-like by size, aspect
   ratio and ink density, in reading order.

:func:`segment` runs them in order on a frame, inside the sheet ``realtime.sheet``
finds, and returns a :class:`Page`.
:func:`crop_ink` does the same for a crop the caller says holds one digit.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ContextManager

import cv2
import numpy as np

from realtime.geometry import candidate_pairs, reading_order
from realtime.imaging import BYTE_SUM, gaussian_kernel, grow, ink_gray, reduce, shrink
from realtime.sheet import SheetConfig, paper_mask

Timer = Callable[[str], ContextManager[Any]]
_UNTIMED = contextlib.nullcontext()


def untimed(_stage: str) -> ContextManager[Any]:
    """The default stage timer: times nothing (see ``benchmarks.speed --stages``)."""
    return _UNTIMED


@dataclass(frozen=True)
class SegmentConfig:
    bg_scale: int = 4  # the paper's brightness is estimated at this many times smaller ...
    bg_kernel: int = 9  # ... by a grey closing this wide there (wider than thick strokes)
    shadow_step: int = 8  # the smoothed paper light exceeds the closing's by at most this (no ink bands along shadows)
    # Ink darkness is a fraction of the local paper brightness. A component is ink when it
    # reaches ``strong`` somewhere; its pixels down to ``weak`` belong to it. Both adapt per
    # frame (Otsu between paper and ink, above the paper's noise) within these bounds.
    weak: float = 0.16  # the weak threshold's ceiling (and its value when a frame has too little ink to measure)
    strong: float = 0.32  # the strong threshold's ceiling: dark ink is not bloated
    min_strong: float = 0.13  # the strong threshold's floor: faint pencil under blur is still found
    noise_k: float = 5.0  # the weak threshold is at least this many paper-noise sigmas
    noise_floor: float = 0.06  # neither threshold goes below this darkness (sensor noise on clean paper)
    min_height_px: int = 12  # a digit is at least this many px tall ...
    min_height_frac: float = 0.02  # ... and this share of the frame's shorter side
    max_enclosed: int = 3  # a component whose box holds this many marks whole is a frame or a ring, not a digit ...
    enclosed_share: float = 0.08  # ... marks at least this share of its height (texture specks in a digit's box are none)
    min_aspect: float = 0.06  # width / height; a "1" is very narrow
    max_aspect: float = 5.0  # five slanted touching digits are up to ~4.5x as wide as tall
    min_density: float = 0.03  # ink pixels / box area (a digit holds ~3-4x its stroke-to-height ratio: a 4 in a pen 100x thinner than it, 0.028)
    edge_subject: float = 0.5  # a blob cut by the frame's edge is read only when it spans this share of the frame
    max_density: float = 0.9  # a solid blob is no digit ...
    max_density_aspect: float = 0.5  # ... unless narrow: a marker's 1 is a solid bar
    line_marks: float = 3.0  # a straight run this many mark heights long is a ruled or grid line ...
    line_frac: float = 0.2  # ... or this share of the frame when no mark is shaped like a digit
    line_min_px: int = 40  # ... and never shorter than this
    line_max_px: int = 3  # printed rules binarize at most this thick; ink thicker across a rule is a stroke
    line_bridge_px: int = 7  # gaps a removed rule leaves in a stroke are bridged up to this long
    merge_overlap: float = 0.5  # x-overlap (of the narrower box) for stacked fragments to merge
    merge_height: float = 1.45  # merged height at most this times the taller fragment
    merge_gap: float = 0.35  # vertical gap at most this times the taller fragment
    merge_min_area: float = 0.05  # a fragment has at least this share of the other's ink ...
    merge_min_width: float = 0.4  # ... or this share of its width (a speck is neither)
    max_clutter: float = 0.3  # a blob whose surroundings are more ink than this is texture (a carpet), not a mark on paper
    clutter_margin: float = 0.5  # the surroundings: its box grown by this share of its longer side
    speck_height: float = 0.25  # components shorter than this share of the least digit height are specks
    max_components: int = 1500  # beyond this many marks a frame is texture: marks in texture go first


@dataclass(frozen=True)
class Blob:
    """A digit-like mark: ``box`` (x, y, w, h) in frame pixels, tight around its ink, and
    ``mask`` (bool [h, w]) of the pixels that belong to it. ``patch``: its ink (uint8
    [h, w]) when it is not the ink map's under the mask (pieces joined across a pen skip
    have their gap bridged)."""

    box: tuple[int, int, int, int]
    mask: np.ndarray
    patch: np.ndarray | None = None

    def ink(self, ink_map: np.ndarray) -> np.ndarray:
        """Its ink as uint8 [h, w], zero off its mask."""
        if self.patch is not None:
            return self.patch
        x, y, w, h = self.box
        return np.multiply(ink_map[y : y + h, x : x + w], self.mask, dtype=np.uint8)


@dataclass(frozen=True)
class Page:
    """A frame as the stages after segmentation see it: the ink map, the paper (``None``:
    the frame shows paper only) and the blobs on it, in the pixels of a copy ``scale``
    times the frame's size (``realtime.scale``)."""

    ink: np.ndarray
    paper: np.ndarray | None
    blobs: list[Blob]
    scale: float = 1.0
    pieces: list[Blob] = dataclasses.field(default_factory=list)  # marks too small to be digits, maybe parts of one


def reduce_gray(gray: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> np.ndarray:
    """``gray`` reduced ``bg_scale`` times (area-averaged): shared by :func:`ink_map` and
    the sheet, which both look at the frame's large-scale light."""
    return shrink(gray, max(1, cfg.bg_scale))


def ink_map(gray: np.ndarray, cfg: SegmentConfig = SegmentConfig(), reduced: np.ndarray | None = None) -> np.ndarray:
    """Ink darkness relative to the local paper brightness, uint8: ``255 * (1 - gray /
    paper)``, so 0 is paper and 255 black ink (uint8 rather than float: every later pixel
    operation on it is 2-4x cheaper, and a camera's 8 bits hold no finer information)."""
    h, w = gray.shape
    small = reduce_gray(gray, cfg) if reduced is None else reduced
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (cfg.bg_kernel, cfg.bg_kernel))
    # a grey closing wider than any stroke removes the ink, leaving the paper's light; a
    # max filter would also carry bright paper a kernel's width across every shadow's
    # edge, and the shaded strip would then read as ink
    bg = cv2.morphologyEx(small, cv2.MORPH_CLOSE, k)
    # sepFilter2D with GaussianBlur's own kernel: the same result (within one grey level)
    # ~6x faster than GaussianBlur's bit-exact uint8 path for a kernel this wide
    g1d = gaussian_kernel(cfg.bg_kernel / 2)
    smooth = cv2.sepFilter2D(bg, -1, g1d, g1d, borderType=cv2.BORDER_REFLECT_101)
    # not much brighter than the closing: blurred across a sharp shadow's edge, the lit
    # side's light would make the shaded side's paper read as a band of ink
    if cfg.shadow_step > 0:
        dark_side = cv2.subtract(smooth, bg) > cfg.shadow_step
        smooth[dark_side] = bg[dark_side]
    bg = smooth
    bg = cv2.resize(cv2.max(bg, 16), (w, h), interpolation=cv2.INTER_LINEAR)
    g = cv2.GaussianBlur(gray, (3, 3), 0)
    # 255 * gray / paper saturates at 255 where the pixel is at least as bright as paper
    return cv2.bitwise_not(cv2.divide(g, bg, scale=255))


def _squeeze_count(mask: np.ndarray, squeeze: int, horizontal: bool, at_least: int) -> np.ndarray:
    """0/255 mask, ``squeeze`` times smaller along one axis: 255 where at least
    ``at_least`` of the ``squeeze`` pixels it covers are set in ``mask`` (0/255)."""
    h, w = mask.shape
    n = w if horizontal else h
    if squeeze == 8 and n >= 8:
        ones = mask >> 7
        if n % 8:
            # the last partial block counts what it has (a non-whole-number INTER_AREA costs ~5x)
            ones = cv2.copyMakeBorder(ones, 0, 0 if horizontal else 8 - n % 8, 0, 8 - n % 8 if horizontal else 0,
                                      cv2.BORDER_CONSTANT, value=0)
            h, w = ones.shape
        ones = np.ascontiguousarray(ones)
        if horizontal:
            # 8 neighbouring 0/1 bytes are one uint64; multiplying by 0x0101.. sums them
            # into the top byte: a per-row block count without a strided reduction
            count = ((ones.view(np.uint64) * BYTE_SUM) >> np.uint64(56)).astype(np.uint8)
        else:
            count = ones.reshape(h // 8, 8, w).sum(axis=1, dtype=np.uint8)
        return np.where(count >= at_least, np.uint8(255), np.uint8(0))
    size = (max(1, w // squeeze), h) if horizontal else (w, max(1, h // squeeze))
    mean = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
    _, out = cv2.threshold(mean, 255 * (at_least - 0.5) / squeeze, 255, cv2.THRESH_BINARY)
    return out


def _squeezed(mask: np.ndarray, horizontal: bool, squeeze: int = 8) -> np.ndarray:
    """``mask`` squeezed ``squeeze`` times along one axis (a cell is set where a quarter
    of its pixels are: faint rules binarize as dashes), short gaps closed: a line stays a
    full run while a crossing stroke fades. Runs are then found with a kernel ``squeeze``
    times shorter on ``squeeze`` times fewer pixels: ~64x cheaper than a full-resolution
    opening with a kernel a fifth of the frame long."""
    small = _squeeze_count(mask, squeeze, horizontal, max(1, squeeze // 4))
    bridge = (3, 1) if horizontal else (1, 3)
    return cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, bridge))


def _opened(small: np.ndarray, length: int, horizontal: bool, squeeze: int = 8) -> np.ndarray | None:
    """The cells of a squeezed mask on runs at least ``length`` px long (``None``: none)."""
    k = max(3, length // squeeze)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1) if horizontal else (1, k))
    opened = cv2.morphologyEx(small, cv2.MORPH_OPEN, kernel)
    return opened if cv2.hasNonZero(opened) else None


def _long_runs(mask: np.ndarray, length: int, horizontal: bool, small: np.ndarray | None = None) -> np.ndarray | None:
    """Pixels of ``mask`` on straight runs at least ``length`` long along one axis
    (``None`` when there are none); ``small``: its :func:`_squeezed` copy, if made already."""
    opened = _opened(_squeezed(mask, horizontal) if small is None else small, length, horizontal)
    if opened is None:
        return None
    h, w = mask.shape
    sh, sw = opened.shape
    cover = (sw * 8, h) if horizontal else (w, sh * 8)  # a squeezed cell is 8 px (the last one maybe padded)
    grown = grow(opened, cover)[:h, :w] if cover[0] >= w and cover[1] >= h else grow(opened, (w, h))
    return cv2.bitwise_and(grown, mask)


def _without(mask: np.ndarray, drop: np.ndarray | None) -> np.ndarray:
    """``mask`` with the pixels set in ``drop`` cleared (``drop`` may be ``None``: none)."""
    return mask if drop is None else cv2.bitwise_and(mask, cv2.bitwise_not(drop))


def _thin_part(lines: np.ndarray | None, mask: np.ndarray, other: np.ndarray | None, across: tuple[int, int],
               ) -> np.ndarray | None:
    """The pixels of ``lines`` where the ink across them is thin (a rule alone, not a
    stroke crossing or running along it); the other direction's lines (``other``) are
    left out of that test, since a grid's crossings are not strokes."""
    if lines is None:
        return None
    thick = cv2.morphologyEx(_without(mask, other), cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, across))
    thin = _without(lines, thick)
    return thin if cv2.hasNonZero(thin) else None


def strip_lines(mask: np.ndarray, length: tuple[int, int], cfg: SegmentConfig = SegmentConfig(),
                squeezed: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Drop straight horizontal / vertical runs at least ``length`` (horizontal, vertical)
    px long (ruled and grid lines), then bridge the gaps they leave in strokes that
    crossed them. ``squeezed``: the mask's :func:`_squeezed` copies along both axes."""
    h, w = mask.shape
    sq = squeezed or (None, None)
    horiz = _long_runs(mask, length[0], True, sq[0])
    vert = _long_runs(mask, length[1], False, sq[1])
    if horiz is None and vert is None:
        return mask
    # grow the line mask a pixel so anti-aliased line edges go too
    k3 = np.ones((3, 3), np.uint8)
    h0 = None if horiz is None else cv2.dilate(horiz, k3)
    v0 = None if vert is None else cv2.dilate(vert, k3)
    t = cfg.line_max_px + 1
    horiz = _thin_part(h0, mask, v0, (1, t))
    vert = _thin_part(v0, mask, h0, (t, 1))
    out = _without(_without(mask, horiz), vert)
    # a stroke cut by a horizontal line leaves a vertical gap, and vice versa; bridged
    # only across the line that made the gap: along it, closing would restore the rule
    # between two neighbouring digits and join them
    repaired = out
    b = cfg.line_bridge_px
    for lines, shape in ((horiz, (1, b)), (vert, (b, 1))):
        if lines is not None:
            bridged = cv2.morphologyEx(out, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, shape))
            repaired = cv2.bitwise_or(repaired, cv2.bitwise_and(bridged, lines))
    return repaired


def _holders(stats: np.ndarray, shape: tuple[int, int], cfg: SegmentConfig) -> np.ndarray:
    """Which components hold other marks whole (a grid, a ring round the sheet)."""
    marks = stats[:, cv2.CC_STAT_HEIGHT] >= least_height(shape, cfg)
    return enclosing(stats[:, :4], marks, cfg.max_enclosed, cfg.enclosed_share)


def shaped_like_digits(stats: np.ndarray, shape: tuple[int, int], cfg: SegmentConfig) -> np.ndarray:
    """Which components (stats rows) are shaped like one digit, cut by the frame's edge or
    not: size, aspect and density (:func:`digit_like`), holding no other mark."""
    x, y, w, h = (stats[:, i].astype(np.int64) for i in range(4))
    like = digit_like(x, y, x + w, y + h, stats[:, cv2.CC_STAT_AREA].astype(np.float64), shape, cfg, edges=True)
    return like & ~_holders(stats, shape, cfg)


def mark_height(mask: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> float | None:
    """The height of the frame's marks: the median height of the components shaped like
    one digit, each weighing by its ink (specks count little, a close-up digit much), or
    ``None`` when no component is: the scale lengths in the frame are judged by."""
    _, stats, _, _ = _components(mask)
    if len(stats) == 0:
        return None
    like = shaped_like_digits(stats, mask.shape, cfg)
    if not like.any():
        return None
    h, a = stats[like, cv2.CC_STAT_HEIGHT], stats[like, cv2.CC_STAT_AREA].astype(np.float64)
    order = np.argsort(h, kind="stable")
    c = np.cumsum(a[order])
    return float(h[order][np.searchsorted(c, 0.5 * c[-1])])


def remove_lines(mask: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> np.ndarray:
    """Drop ruled and grid lines: straight runs at least ``line_marks`` times as long as
    the frame's marks are tall (:func:`mark_height`), or ``line_frac`` of the frame when
    no mark is shaped like a digit. No stroke of a digit is that long, however close the
    camera: the scale is the marks', not the frame's."""
    H, W = mask.shape
    squeezed = (_squeezed(mask, True), _squeezed(mask, False))
    # no run as long as the shortest line can be: nothing to remove, no marks to measure
    if all(_opened(sq, cfg.line_min_px, horizontal) is None for sq, horizontal in zip(squeezed, (True, False))):
        return mask
    height = mark_height(mask, cfg)
    if height is None:
        length = (max(cfg.line_min_px, int(cfg.line_frac * W)), max(cfg.line_min_px, int(cfg.line_frac * H)))
    else:
        length = (max(cfg.line_min_px, int(cfg.line_marks * height)),) * 2
    return strip_lines(mask, length, cfg, squeezed)


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
    when given)."""
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
    # Otsu among the pixels clearly darker than paper: above the noise floor and 3 sigma
    cut = int(np.floor(max(cfg.noise_floor * 255, med + 3 * sigma)))
    cand = hist.copy()
    cand[: cut + 1] = 0
    if cand.sum() < 50:
        return cfg.weak, cfg.strong
    strong = float(np.clip(_otsu(cand) / 255.0, cfg.min_strong, cfg.strong))
    weak = float(np.clip(max(0.5 * strong, (med + cfg.noise_k * sigma) / 255.0), cfg.noise_floor, cfg.weak))
    # weak stays clearly below strong, so hysteresis has room to work
    return min(weak, 0.8 * strong), strong


def threshold(ink: np.ndarray, weak: float, region: np.ndarray | None = None) -> np.ndarray:
    """uint8 mask: 255 where the ink is at least ``weak`` dark (inside ``region`` when given)."""
    _, mask = cv2.threshold(ink, weak * 255, 255, cv2.THRESH_BINARY)
    # before line removal: the sheet's edge and desk texture are not ruled lines
    return mask if region is None else cv2.bitwise_and(mask, region)


def binarize(ink: np.ndarray, cfg: SegmentConfig = SegmentConfig(), thresholds: tuple[float, float] | None = None,
             region: np.ndarray | None = None) -> np.ndarray:
    """uint8 mask (255 = ink at least ``weak`` dark, inside ``region`` when given), ruled
    and grid lines removed. The other half of the hysteresis (a component must reach
    ``strong`` somewhere) is applied by :func:`find_blobs`, which labels the components
    anyway: one connected-components pass per frame instead of two."""
    return remove_lines(threshold(ink, thresholds[0] if thresholds is not None else cfg.weak, region), cfg)


def _mergeable(boxes: np.ndarray, areas: np.ndarray | None, cfg: SegmentConfig,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs ``(i, j, vertical gap)`` of components that may be fragments of one
    digit (stacked, close, and together no taller than one digit)."""
    x, y, w, h = (boxes[:, i].astype(np.float64) for i in range(4))
    i, j = candidate_pairs(x, x + w, 0.0)
    ox = np.minimum(x[i] + w[i], x[j] + w[j]) - np.maximum(x[i], x[j])
    overlap = ox / np.maximum(np.minimum(w[i], w[j]), 1)
    merged_h = np.maximum(y[i] + h[i], y[j] + h[j]) - np.minimum(y[i], y[j])
    taller = np.maximum(h[i], h[j])
    gap = np.maximum(y[i], y[j]) - np.minimum(y[i] + h[i], y[j] + h[j])
    ok = (overlap >= cfg.merge_overlap) & (merged_h <= cfg.merge_height * taller) & (gap <= cfg.merge_gap * taller)
    # a line (a rule, the sheet's edge) is no piece of a digit
    aspect = w / np.maximum(h, 1)
    line = (aspect > cfg.max_aspect) | (aspect < cfg.min_aspect)
    ok &= ~line[i] & ~line[j]
    if areas is not None:
        # a real piece (a 5's bar, half a broken 4) is sizeable or wide; a dot left by a
        # grid crossing or paper speck is neither
        a = areas.astype(np.float64)
        small_a, large_a = np.minimum(a[i], a[j]), np.maximum(a[i], a[j])
        narrow = np.minimum(w[i], w[j]) / np.maximum(np.maximum(w[i], w[j]), 1)
        ok &= (small_a >= cfg.merge_min_area * large_a) | (narrow >= cfg.merge_min_width)
    return i[ok], j[ok], gap[ok]


def merge_fragments(boxes: np.ndarray, cfg: SegmentConfig = SegmentConfig(), areas: np.ndarray | None = None,
                    ) -> np.ndarray:
    """Group indices (one per box, the group's smallest member): pieces stacked
    vertically that together still look like one digit."""
    n = len(boxes)
    parent = np.arange(n)
    if n < 2:
        return parent
    ii, jj, gap = _mergeable(boxes, areas, cfg)
    y, h = boxes[:, 1].astype(np.float64), boxes[:, 3].astype(np.float64)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # The height limit holds for the merged group, not only pairwise: chained through a
    # speck (a grid crossing, a dot) between them, two digits of consecutive rows would
    # otherwise become one. Closest pairs merge first.
    g_top, g_bottom, g_tall = y.copy(), y + h, h.copy()
    # (pairs in row-major order of (i, j), as the gaps' stable sort breaks ties)
    order = np.lexsort((jj, ii))
    ii, jj, gap = ii[order], jj[order], gap[order]
    for k in np.argsort(gap, kind="stable"):
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


def enclosing(boxes: np.ndarray, counted: np.ndarray, at_least: int, min_share: float) -> np.ndarray:
    """Which ``boxes`` (x, y, w, h) hold at least ``at_least`` of the ``counted`` boxes
    wholly inside them, each at least ``min_share`` of the holder's height (specks of
    paper texture inside a big digit's box do not count)."""
    out = np.zeros(len(boxes), bool)
    x, y, w, h = (boxes[:, i].astype(np.int64) for i in range(4))
    inner = np.flatnonzero(counted)
    if len(inner) < at_least:
        return out
    # only a box at least twice as tall as the smallest counted one can hold it
    holder = h >= 2 * int(h[inner].min())
    if not holder.any():
        return out
    # a held box overlaps its holder in x: only those pairs are tested
    i, j = candidate_pairs(x, x + w, 0.0)
    i, j = np.concatenate([i, j]), np.concatenate([j, i])
    keep = holder[i] & counted[j]
    i, j = i[keep], j[keep]
    inside = (x[j] >= x[i]) & (y[j] >= y[i]) & (x[j] + w[j] <= x[i] + w[i]) & (y[j] + h[j] <= y[i] + h[i])
    inside &= h[j] >= min_share * h[i]
    out[:] = np.bincount(i[inside], minlength=len(boxes)) >= at_least
    return out


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Connected components of the part of ``mask`` that holds ink: ``(labels, stats in
    frame coordinates (background row dropped), labels' x and y offset)``."""
    # Labelling costs per pixel, and ink often covers only part of the frame (the sheet
    # in a desk scene): label only the box around it. Its corner is put on even
    # coordinates, where Grana's 2x2 blocks fall as in the whole frame, so the labels are
    # numbered exactly as there.
    bx, by, bw, bh = cv2.boundingRect(mask)
    if bw == 0:
        return np.zeros((0, 0), np.int32), np.zeros((0, 5), np.int32), 0, 0
    ox, oy = bx & ~1, by & ~1
    # Grana's algorithm: the same labels and stats as the default, 3x faster with stats
    _, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        mask[oy : by + bh, ox : bx + bw], 8, cv2.CV_32S, cv2.CCL_GRANA)
    stats = stats[1:]
    stats[:, cv2.CC_STAT_LEFT] += ox
    stats[:, cv2.CC_STAT_TOP] += oy
    return labels, stats, ox, oy


def _group_boxes(boxes: np.ndarray, inv: np.ndarray, k: int, W: int, H: int) -> tuple[np.ndarray, ...]:
    """Per group (``inv``: each box's group), the union box as x0, y0, x1, y1."""
    x0 = np.full(k, W, np.int64)
    y0 = np.full(k, H, np.int64)
    x1 = np.zeros(k, np.int64)
    y1 = np.zeros(k, np.int64)
    np.minimum.at(x0, inv, boxes[:, 0])
    np.minimum.at(y0, inv, boxes[:, 1])
    np.maximum.at(x1, inv, boxes[:, 0] + boxes[:, 2])
    np.maximum.at(y1, inv, boxes[:, 1] + boxes[:, 3])
    return x0, y0, x1, y1


def digit_like(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, area: np.ndarray,
                shape: tuple[int, int], cfg: SegmentConfig, edges: bool = False) -> np.ndarray:
    """Which groups are shaped like a digit: size, aspect, density, and (unless ``edges``)
    not cut by the frame's edge."""
    H, W = shape
    w, h = x1 - x0, y1 - y0
    aspect = w / h
    density = area / (w * h)
    keep = h >= least_height((H, W), cfg)
    keep &= (aspect >= cfg.min_aspect) & (aspect <= cfg.max_aspect)
    keep &= (density >= cfg.min_density) & ~((aspect > cfg.max_density_aspect) & (density > cfg.max_density))
    if not edges:
        # a digit cut by the frame edge cannot be read reliably, unless it fills the frame:
        # a close-up is the subject of the picture, and is seldom cut
        cut = np.stack([x0 <= 0, y0 <= 0, x1 >= W, y1 >= H]).sum(axis=0)
        # (a lattice that runs off all four sides is a grid, not a close-up)
        subject = ((h >= cfg.edge_subject * H) | (w >= cfg.edge_subject * W)) & (cut <= 2)
        keep &= (cut == 0) | subject
    return keep


def _uncluttered(mask: np.ndarray, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray,
                 cfg: SegmentConfig) -> np.ndarray:
    """Which boxes lie on clean paper: the ink of ``mask`` in the ring around each (its
    box grown by ``clutter_margin`` of its longer side, the box itself left out) covers
    at most ``max_clutter`` of the ring. Texture (a carpet, wood grain, sensor noise)
    binarizes into marks surrounded by more of the same; a digit on paper has paper
    around it."""
    H, W = mask.shape
    integral = cv2.integral(mask, sdepth=cv2.CV_32S)

    def ink(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
        return (integral[d, c] - integral[b, c] - integral[d, a] + integral[b, a]) / 255.0

    m = np.ceil(cfg.clutter_margin * np.maximum(x1 - x0, y1 - y0)).astype(np.int64)
    gx0, gy0 = np.maximum(x0 - m, 0), np.maximum(y0 - m, 0)
    gx1, gy1 = np.minimum(x1 + m, W), np.minimum(y1 + m, H)
    around = ink(gx0, gy0, gx1, gy1) - ink(x0, y0, x1, y1)
    ring = (gx1 - gx0) * (gy1 - gy0) - (x1 - x0) * (y1 - y0)
    return around <= cfg.max_clutter * np.maximum(ring, 1)


def least_height(shape: tuple[int, ...], cfg: SegmentConfig = SegmentConfig()) -> float:
    """The least height of a digit in a frame of ``shape``."""
    return max(cfg.min_height_px, cfg.min_height_frac * min(shape[:2]))


def find_marks(mask: np.ndarray, cfg: SegmentConfig = SegmentConfig(), ink: np.ndarray | None = None,
               strong: float | None = None, surroundings: np.ndarray | None = None,
               ) -> tuple[list[Blob], list[Blob]]:
    """The digit-like components of a binary ink mask, fragments merged, in reading order,
    and the pieces too short to be digits that may be parts of one (a digit a pen
    skipped across), each ``(blobs, pieces)``. With ``ink`` given, a mark must reach
    ``strong`` darkness somewhere (default: ``cfg.strong``): faint paper texture never
    becomes a digit on its own. A mark must lie on clean paper: little ink around it in
    ``surroundings`` (default: ``mask``)."""
    H, W = mask.shape
    labels, stats, ox, oy = _components(mask)
    if len(stats) == 0:
        return [], []
    ids = np.arange(1, len(stats) + 1)
    min_h = least_height((H, W), cfg)
    # specks cannot become digits even when merged; drop them before pairing
    big = (stats[:, cv2.CC_STAT_AREA] >= 4) & (stats[:, cv2.CC_STAT_HEIGHT] >= 3)
    big &= stats[:, cv2.CC_STAT_HEIGHT] >= cfg.speck_height * min_h
    if big.sum() > cfg.max_components:
        # a frame of texture (sensor noise, a carpet without a sheet makes thousands of
        # marks): what lies in texture goes before any pair of marks is weighed
        x, y, w, h = (stats[:, i].astype(np.int64) for i in range(4))
        big[big] &= _uncluttered(mask if surroundings is None else surroundings, x[big], y[big], (x + w)[big],
                                 (y + h)[big], cfg)
    # nor can a component whose box holds others: with no sheet found, the desk around
    # the paper binarizes into one ring whose box holds the whole sheet
    big &= ~_holders(stats, (H, W), cfg)
    stats, ids = stats[big], ids[big]
    if len(ids) == 0:
        return [], []
    boxes = stats[:, :4].astype(np.int64)
    groups = merge_fragments(boxes, cfg, stats[:, cv2.CC_STAT_AREA])
    # each group's box, area and shape tests at once; only survivors get a mask
    gid, inv = np.unique(groups, return_inverse=True)
    k = len(gid)
    x0, y0, x1, y1 = _group_boxes(boxes, inv, k, W, H)
    area = np.bincount(inv, weights=stats[:, cv2.CC_STAT_AREA], minlength=k)
    keep = digit_like(x0, y0, x1, y1, area, (H, W), cfg)
    # a piece: too short for a digit, otherwise not unlike a part of one
    aspect = (x1 - x0) / np.maximum(y1 - y0, 1)
    piece = ((y1 - y0) < min_h) & (aspect >= cfg.min_aspect) & (aspect <= cfg.max_aspect)
    piece &= (x0 > 0) & (y0 > 0) & (x1 < W) & (y1 < H)
    clean = _uncluttered(mask if surroundings is None else surroundings, x0, y0, x1, y1, cfg)
    peak = 255 * (cfg.strong if strong is None else strong)
    # each group's member ids, from one stable sort instead of a search per group
    order = np.argsort(inv, kind="stable")
    first = np.searchsorted(inv[order], np.arange(k + 1))
    out: tuple[list[Blob], list[Blob]] = ([], [])
    for j in np.nonzero((keep | piece) & clean)[0].tolist():
        members = ids[order[first[j] : first[j + 1]]]
        bx0, by0, bx1, by1 = int(x0[j]), int(y0[j]), int(x1[j]), int(y1[j])
        sub = labels[by0 - oy : by1 - oy, bx0 - ox : bx1 - ox]
        m = sub == members[0] if len(members) == 1 else np.isin(sub, members)
        # the darkest pixel of the component: one masked OpenCV call, no copy
        if ink is not None and cv2.minMaxLoc(ink[by0:by1, bx0:bx1], m.view(np.uint8))[1] < peak:
            continue
        out[0 if keep[j] else 1].append(Blob(box=(bx0, by0, bx1 - bx0, by1 - by0), mask=m))
    blobs, pieces = out
    return [blobs[i] for i in reading_order([b.box for b in blobs])], pieces


def find_blobs(mask: np.ndarray, cfg: SegmentConfig = SegmentConfig(), ink: np.ndarray | None = None,
               strong: float | None = None, surroundings: np.ndarray | None = None) -> list[Blob]:
    """The digit-like components of :func:`find_marks`, in reading order."""
    return find_marks(mask, cfg, ink, strong, surroundings)[0]


def marks_on_paper(ink: np.ndarray, paper: np.ndarray | None, cfg: SegmentConfig = SegmentConfig(),
                   ) -> tuple[list[Blob], list[Blob]]:
    """The blobs and pieces of an ink map (:func:`find_marks`), inside ``paper`` when
    given: thresholds for this frame, binarization with line removal, components (on
    clean paper: the surroundings are judged before line removal, which carves texture
    into stroke-like pieces)."""
    weak, strong = ink_thresholds(ink, cfg, paper)
    mask = threshold(ink, weak, paper)
    return find_marks(remove_lines(mask, cfg), cfg, ink, strong, surroundings=mask)


def blobs_on_paper(ink: np.ndarray, paper: np.ndarray | None, cfg: SegmentConfig = SegmentConfig()) -> list[Blob]:
    """The blobs of :func:`marks_on_paper`."""
    return marks_on_paper(ink, paper, cfg)[0]


# (gray, paper, reduced gray) -> (the scale to read at, how much smaller the paper's light is estimated)
Measure = Callable[[np.ndarray, np.ndarray | None, np.ndarray], tuple[float, int]]


def segment(frame: np.ndarray, cfg: SegmentConfig = SegmentConfig(), sheet: SheetConfig = SheetConfig(),
            measure: Measure | None = None, timer: Timer = untimed) -> Page:
    """A frame (uint8 BGR or gray) as a :class:`Page`: its ink map, the sheet (when a desk
    shows around it) and the blobs on it. ``measure(reduced gray, paper)``: the scale to
    read the frame at (``realtime.scale``; default 1), from its gray, the sheet found on
    it and the gray reduced ``bg_scale`` times. ``timer(stage)``: a context manager around each
    step, for profiling."""
    with timer("ink map"):
        gray = ink_gray(frame)
        reduced = reduce_gray(gray, cfg)
    with timer("sheet"):
        paper = paper_mask(gray, sheet, reduced)
    factor = 1.0
    if measure is not None:
        with timer("scale"):
            factor, bg_scale = measure(gray, paper, reduced)
            factor = min(1.0, factor)
            if factor < 1.0:
                size = (max(1, round(gray.shape[1] * factor)), max(1, round(gray.shape[0] * factor)))
                gray = reduce(gray, size)
                paper = None if paper is None else cv2.resize(paper, size, interpolation=cv2.INTER_NEAREST)
            if factor < 1.0 or bg_scale != cfg.bg_scale:
                cfg = dataclasses.replace(cfg, bg_scale=bg_scale)
                reduced = reduce_gray(gray, cfg)
    with timer("ink map"):
        ink = ink_map(gray, cfg, reduced)
    with timer("blobs"):
        blobs, pieces = marks_on_paper(ink, paper, cfg)
    return Page(ink, paper, blobs, factor, pieces)


@dataclass(frozen=True)
class CropConfig:
    work_px: int = 200  # a single-digit crop is scaled so its longer side is this (segmentation assumes tens of px)
    pad: int = 8  # paper added around it, so a digit touching the crop's edge still gets a background estimate
    line_frac: float = 0.9  # a digit's own strokes span much of the crop: only a line across nearly all of it is a rule
    group: float = 0.05  # pieces closer than this share of the crop are one group (thin strokes binarize broken)
    keep: float = 0.25  # groups at least this share of the largest one's ink belong to the digit (a detached bar)
    edge_aspect: float = 5.0  # a group this elongated touching the border is a paper edge or a shadow line ...
    edge_span: float = 0.9  # ... as is one spanning this share of the crop


def crop_ink(crop: np.ndarray, cfg: SegmentConfig = SegmentConfig(), crop_cfg: CropConfig = CropConfig(),
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """The ink map (uint8) and the digit's mask in a crop the caller says holds one digit
    (``None`` mask: no ink), both cut to the digit's box.

    Thin strokes often binarize into several pieces, so pieces are grouped by proximity
    (a dilated copy of the mask); groups that are long thin edges touching the crop
    border (paper edge, shadow line) are dropped; the largest group is the digit, with
    any group at least ``keep`` its size (a detached bar).
    """
    gray = ink_gray(np.asarray(crop))
    if gray.dtype != np.uint8:
        gray = np.clip(gray, 0, 255).astype(np.uint8)
    h, w = gray.shape[:2]
    s = crop_cfg.work_px / max(h, w)
    gray = cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    pad = crop_cfg.pad
    gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    cfg = dataclasses.replace(cfg, line_frac=crop_cfg.line_frac)
    ink = ink_map(gray, cfg)
    weak, strong = ink_thresholds(ink, cfg)
    mask = binarize(ink, cfg, (weak, strong))
    if not mask.any():
        return ink, None
    keep, labels = _digit_groups(ink, mask, strong, crop_cfg)
    if not keep.any():
        return ink, None
    digit = keep[labels] & (mask > 0)
    ys, xs = np.nonzero(digit)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return ink[y0:y1, x0:x1], digit[y0:y1, x0:x1]


def _digit_groups(ink: np.ndarray, mask: np.ndarray, strong: float, cfg: CropConfig) -> tuple[np.ndarray, np.ndarray]:
    """Which proximity groups of a single-digit crop's ink belong to the digit: ``(keep
    per group label, the group labels image)``."""
    H, W = mask.shape
    k = max(3, int(cfg.group * cfg.work_px)) | 1
    grouped = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grouped, connectivity=8)
    area = np.bincount(labels[mask > 0], minlength=n).astype(np.float64)
    area[0] = 0
    x, y, bw, bh = (stats[:, i] for i in range(4))
    m = 2 * cfg.pad
    touches = (x <= m) | (y <= m) | (x + bw >= W - m) | (y + bh >= H - m)
    elongated = np.maximum(bw, bh) > cfg.edge_aspect * np.maximum(np.minimum(bw, bh), 1)
    huge = (bw > cfg.edge_span * W) | (bh > cfg.edge_span * H)
    score = area.copy()
    score[touches & (elongated | huge)] = 0  # paper edges, shadow borders, desk
    if score.max() <= 0:
        score = area
    main = int(score.argmax())
    keep = score >= cfg.keep * score[main]
    keep[0] = False
    # hysteresis: a group must be properly dark somewhere (paper texture is not)
    peak = np.zeros(n, np.float32)
    np.maximum.at(peak, labels[mask > 0], ink[mask > 0])
    keep &= peak >= 255 * strong
    return keep, labels
