"""Handwriting as pen strokes: MNIST digits redrawn along their skeletons.

A digit is thinned to its skeleton (Zhang-Suen), the skeleton becomes a graph of short
segments in the digit's own 28-px coordinates, and the digit is drawn again along that
graph with a pen of any width: a ballpoint 1 px wide, a marker. On the graph, strokes
are cut before drawing (the gaps a pen leaves when it skips or is lifted between the
strokes of one digit) or added (the flag and foot of a European 1, the bar of a crossed
7, the slash of a crossed zero), so every variant stays the writer's own digit.

Everything here is a pure function of its inputs (randomness comes in as a
``numpy.random.Generator``); ``benchmarks.scenes`` decides when to use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# The 8 neighbours p2..p9 of Zhang and Suen's thinning, clockwise from north, as (dy, dx).
_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
# Upsampling before thinning: the skeleton of a 28-px digit at 4x follows its strokes
# to a quarter pixel, so a close-up drawn from it is not a staircase.
_UP = 4


def _thinning_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per 8-neighbourhood code (bit i = neighbour p(i+2)), whether a pixel is deleted in
    the first / second sub-iteration of Zhang-Suen thinning."""
    first, second = np.zeros(256, bool), np.zeros(256, bool)
    for code in range(256):
        p = [(code >> i) & 1 for i in range(8)]
        b = sum(p)
        a = sum(p[i] == 0 and p[(i + 1) % 8] == 1 for i in range(8))
        if 2 <= b <= 6 and a == 1:
            p2, _, p4, _, p6, _, p8, _ = p
            first[code] = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
            second[code] = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
    first.flags.writeable = False
    second.flags.writeable = False
    return first, second


_THIN_FIRST, _THIN_SECOND = _thinning_tables()


def _code_kernel() -> np.ndarray:
    k = np.zeros((3, 3), np.float32)
    for bit, (dy, dx) in enumerate(_NEIGHBOURS):
        k[1 + dy, 1 + dx] = float(1 << bit)
    k.flags.writeable = False
    return k


_CODE_KERNEL = _code_kernel()


def thin(mask: np.ndarray) -> np.ndarray:
    """The one-pixel-wide skeleton of a binary mask (Zhang-Suen), as a bool array."""
    mask = np.asarray(mask, bool)
    out = np.zeros(mask.shape, bool)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return out
    # only the mask's bounding box, with a pixel of background around it
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    img = np.pad(mask[y0:y1, x0:x1].astype(np.float32), 1)
    changed = True
    while changed:
        changed = False
        for table in (_THIN_FIRST, _THIN_SECOND):
            # each pixel's neighbourhood code in one correlation (bit i = neighbour p(i+2))
            code = cv2.filter2D(img, -1, _CODE_KERNEL, borderType=cv2.BORDER_CONSTANT).astype(np.uint8)
            delete = (img > 0) & table[code]
            if delete.any():
                img[delete] = 0.0
                changed = True
    out[y0:y1, x0:x1] = img[1:-1, 1:-1] > 0
    return out


@dataclass
class Strokes:
    """A digit as a graph of pen strokes, in the source image's pixel coordinates."""

    points: np.ndarray  # float64 [n, 2]: x, y
    edges: np.ndarray  # int [m, 2]: indices into points; (i, i) is a dot
    width: float  # the writer's own stroke width (source pixels)
    top: float  # the digit's own extent (added strokes aside): min y
    bottom: float  # max y

    @property
    def height(self) -> float:
        return self.bottom - self.top

    def degree(self) -> np.ndarray:
        deg = np.zeros(len(self.points), int)
        real = self.edges[self.edges[:, 0] != self.edges[:, 1]]
        np.add.at(deg, real.ravel(), 1)
        return deg


def skeleton(img: np.ndarray) -> Strokes | None:
    """The strokes of a digit image (uint8, ink bright on black, e.g. MNIST 28x28)."""
    src = np.asarray(img, np.float32)
    if src.max() <= 0:
        return None
    big = cv2.resize(src, (src.shape[1] * _UP, src.shape[0] * _UP), interpolation=cv2.INTER_CUBIC)
    mask = big >= 0.45 * float(src.max())
    if not mask.any():
        return None
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    skel = thin(mask)
    ys, xs = np.nonzero(skel)
    if ys.size < 2:
        return None
    index = np.full(skel.shape, -1, np.int64)
    index[ys, xs] = np.arange(ys.size)
    edges = []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        ny, nx = ys + dy, xs + dx
        ok = (ny < skel.shape[0]) & (nx >= 0) & (nx < skel.shape[1])
        j = np.full(ys.size, -1, np.int64)
        j[ok] = index[ny[ok], nx[ok]]
        keep = j >= 0
        edges.append(np.stack([np.nonzero(keep)[0], j[keep]], axis=1))
    e = np.concatenate(edges)
    lonely = np.setdiff1d(np.arange(ys.size), e.ravel())
    e = np.concatenate([e, np.stack([lonely, lonely], axis=1)])
    pts = (np.stack([xs, ys], axis=1).astype(np.float64) + 0.5) / _UP - 0.5
    pts = _smooth(pts, e)
    width = max(0.8, (2.0 * float(np.median(dist[ys, xs])) - 1.0) / _UP)
    return Strokes(pts, e, width, float(pts[:, 1].min()), float(pts[:, 1].max()))


def _smooth(points: np.ndarray, edges: np.ndarray, rounds: int = 8) -> np.ndarray:
    """Each point moved halfway toward the mean of its graph neighbours, ``rounds``
    times: the pixel staircase of a thinned diagonal becomes a straight stroke."""
    real = edges[edges[:, 0] != edges[:, 1]]
    deg = np.zeros(len(points))
    np.add.at(deg, real.ravel(), 1.0)
    for _ in range(rounds):
        acc = np.zeros_like(points)
        np.add.at(acc, real[:, 0], points[real[:, 1]])
        np.add.at(acc, real[:, 1], points[real[:, 0]])
        has = deg > 0
        points = points.copy()
        points[has] = 0.5 * points[has] + 0.5 * acc[has] / deg[has, None]
    return points


def _with_chain(s: Strokes, chain: np.ndarray) -> Strokes:
    """``s`` with a polyline (source pixels) added as one more stroke, sampled every
    half pixel so that it bends with the digit under any transform."""
    pts = [chain[0]]
    for a, b in zip(chain[:-1], chain[1:]):
        n = max(1, int(math.ceil(np.linalg.norm(b - a) / 0.5)))
        pts.extend(a + (b - a) * (k / n) for k in range(1, n + 1))
    new = np.asarray(pts, np.float64)
    base = len(s.points)
    idx = np.arange(base, base + len(new))
    edges = np.stack([idx[:-1], idx[1:]], axis=1) if len(new) > 1 else np.stack([idx, idx], axis=1)
    return Strokes(np.concatenate([s.points, new]), np.concatenate([s.edges, edges]), s.width, s.top, s.bottom)


def continental(s: Strokes, label: int, rng: np.random.Generator) -> Strokes:
    """The strokes a European hand adds: a 1 gets its flag (and sometimes a foot), a 7
    its crossbar, a 0 a slash. Other digits are returned as they are."""
    p, h = s.points, s.height
    if h <= 0:
        return s
    if label == 1:
        top = p[int(np.argmin(p[:, 1]))]
        ang = math.radians(rng.uniform(25.0, 55.0))
        length = rng.uniform(0.25, 0.42) * h
        out = _with_chain(s, np.array([top, top + [-length * math.cos(ang), length * math.sin(ang)]]))
        if rng.random() < 0.35:
            foot = p[int(np.argmax(p[:, 1]))]
            half = rng.uniform(0.15, 0.28) * h
            out = _with_chain(out, np.array([foot - [half, 0.0], foot + [half, 0.0]]))
        return out
    if label == 7:
        y = s.top + rng.uniform(0.45, 0.62) * h
        near = p[np.abs(p[:, 1] - y) < 0.75]
        if len(near) == 0:
            return s
        x = float(np.median(near[:, 0]))
        half = rng.uniform(0.17, 0.3) * h
        tilt = math.tan(math.radians(rng.normal(0.0, 4.0))) * half
        return _with_chain(s, np.array([[x - half, y + tilt], [x + half, y - tilt]]))
    if label == 0:
        x0, x1 = float(p[:, 0].min()), float(p[:, 0].max())
        w = x1 - x0
        e = rng.uniform(-0.06, 0.08)  # most slashes end near the loop, some past it
        return _with_chain(s, np.array([[x0 - e * w, s.bottom + e * h], [x1 + e * w, s.top - e * h]]))
    return s


def _transform(angle_deg: float, shear: float, scale: float) -> np.ndarray:
    """The linear part of a digit's placement, as ``benchmarks.scenes`` writes digits:
    a rotation after a shear (the writer's slant), times the scale."""
    a, c = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    return np.array([[a, -c], [c, a]]) @ np.array([[1.0, -shear], [0.0, 1.0]]) * scale


def draw(points: np.ndarray, edges: np.ndarray, width: float, pad: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased alpha (float32, 0..1) of strokes ``width`` px wide along segments
    between ``points`` (target pixels), and the target position of the patch's (0, 0).

    The exact coverage follows from the distance to the centre line, computed on a
    canvas up to 4x finer for thin pens and then averaged down."""
    ss = 4 if width < 2.5 else (2 if width < 6.0 else 1)
    margin = width / 2.0 + pad
    origin = np.floor(points.min(axis=0) - margin)
    size = np.ceil(points.max(axis=0) + margin - origin).astype(int) + 1
    ow, oh = int(size[0]), int(size[1])
    canvas = np.full((oh * ss, ow * ss), 255, np.uint8)
    seg = np.round(((points[edges] - origin) * ss + (ss - 1) / 2.0) * 16).astype(np.int32)
    cv2.polylines(canvas, list(seg), False, 0, 1, cv2.LINE_8, shift=4)
    dist = cv2.distanceTransform(canvas, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    alpha = np.clip(width * ss / 2.0 + 0.5 - dist, 0.0, 1.0).astype(np.float32)
    if ss > 1:
        alpha = cv2.resize(alpha, (ow, oh), interpolation=cv2.INTER_AREA)
    return alpha, origin


def _pieces(alpha: np.ndarray) -> int:
    """Separate pieces of ink (each at least 3% of it): what a segmenter sees as blobs."""
    n, _, stats, _ = cv2.connectedComponentsWithStats((alpha >= 0.5).astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return int((areas >= 0.03 * max(1, areas.sum())).sum()) if n > 1 else 0


def _cut(s: Strokes, edges: np.ndarray, centres: np.ndarray, radius: float) -> np.ndarray:
    """The edges that survive erasing the strokes within ``radius`` of each centre."""
    keep = np.ones(len(edges), bool)
    for c in centres:
        near = np.linalg.norm(s.points - c, axis=1) < radius
        keep &= ~(near[edges[:, 0]] | near[edges[:, 1]])
    return edges[keep]


@dataclass(frozen=True)
class Pen:
    """How a digit is drawn along its strokes."""

    width: float = 0.0  # pen width as a fraction of the ink height; 0: the writer's own width
    grow: int = 0  # with the writer's width: px added on each side (a marker) or taken (a fine pen)
    skips: bool = False  # cut the strokes so the digit falls into pieces that do not touch
    continental: bool = False  # add a 1's flag, a 7's bar, a 0's slash


def pen_digit(img: np.ndarray, label: int, height: float, angle_deg: float, shear: float, pen: Pen,
              rng: np.random.Generator) -> np.ndarray | None:
    """A digit image redrawn with ``pen`` whose ink is ``height`` px tall, slanted and
    rotated as ``benchmarks.scenes`` slants digits; float32 alpha, or ``None`` when the
    image has no strokes to follow."""
    s = skeleton(img)
    if s is None or s.height < 2.0:
        return None
    if pen.continental:
        s = continental(s, label, rng)
    if pen.width > 0:
        width = max(0.8, pen.width * height)
        scale = max(height - width, 4.0) / s.height
    else:
        scale = height / (s.height + s.width)
        width = max(0.8, s.width * scale + 2 * pen.grow)
    centre = np.array([(s.points[:, 0].min() + s.points[:, 0].max()) / 2.0, (s.top + s.bottom) / 2.0])
    target = (s.points - centre) @ _transform(angle_deg, shear, scale).T
    edges = s.edges
    if pen.skips:
        edges = _skip(s, target, width, height, rng)
    alpha, _ = draw(target, edges, width)
    return alpha


def _skip(s: Strokes, target: np.ndarray, width: float, height: float, rng: np.random.Generator) -> np.ndarray:
    """Edges with one or two gaps cut into the strokes (retried until the digit falls
    into at least two pieces, as a skipping or lifted pen leaves it). The gaps are 6-16%
    of the digit's height between the stroke ends, never under 1.5 px; half of the cuts
    fall on a junction of strokes when the digit has one (where pens are lifted)."""
    gap = max(1.5, rng.uniform(0.06, 0.16) * height)
    radius = (gap + width) / 2.0
    target_strokes = Strokes(target, s.edges, width, s.top, s.bottom)
    junctions = np.nonzero(s.degree() >= 3)[0]
    best = s.edges
    for attempt in range(8):
        k = 1 if attempt < 2 and rng.random() < 0.6 else 2
        picks = []
        for _ in range(k):
            pool = junctions if len(junctions) and rng.random() < 0.5 else np.arange(len(target))
            picks.append(target[int(pool[rng.integers(len(pool))])])
        edges = _cut(target_strokes, s.edges, np.array(picks), radius)
        if len(edges) == 0:
            continue
        best = edges
        if _pieces(draw(target, edges, width)[0]) >= 2:
            return edges
    return best
