"""Composed marks for training: MNIST digits written as handwriting, touching pairs and
numbers, and marks that are no digits (letters, printed letters, scribbles, dashes).

Everything here is drawn from a ``numpy.random.Generator`` and the MNIST *training*
split, so a seed gives the same arrays on every machine; the readers' inputs are made
with the live view's own recipes (:mod:`training.fields`).

- digits as handwriting: :func:`glyph` (one digit scaled, slanted, its pen varied),
  :func:`compose` (glyphs side by side, touching), :func:`cut` (a vertical cut, as the
  live view's lattice leaves one);
- the pair reader's samples: :func:`pair_sample`, :func:`make_pairs`;
- the number reader's samples: :func:`number_sample`, :func:`make_numbers`;
- marks: :func:`scribble`, :func:`dash`, :func:`overlapped_pair` (two MNIST images
  overlapped, for the digit network's "not a digit" bank), :func:`letters` (hand-made
  skeletons of letters no digit resembles), :func:`printed` (letters in the fonts
  matplotlib ships; never OpenCV's Hershey fonts, which the benchmark's letters use,
  so that benchmark stays unseen).

Marks are float32 in [0, 1] on a black canvas (1 = ink); glyphs and composed ink uint8.
"""

from __future__ import annotations

import functools
import math
from multiprocessing import Pool
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from training import fields

# What the pair reader's crops are: a pair, one digit, three or four digits, a pair with
# a digit cut in half, marks. A reader trained with triples at 0.18 (pairs 0.42, singles
# 0.14, marks 0.18) read fewer touching digits on the tuning scenes, though three digits
# read as one pair is the commonest wrong reading there (assets/MODEL_CARD.md).
KIND_MIX = {"pair": 0.45, "single": 0.15, "triple": 0.10, "half": 0.08, "marks": 0.22}
MARK_MIX = {"scribble": 0.25, "handwritten": 0.4, "printed": 0.35}  # what the marks are
MARK_SCAN_HEIGHT = (14.0, 22.0)  # px: marks pass through MNIST's resolution (its digits are 20 px tall)
LENGTH_MIX = {1: 0.1, 2: 0.35, 3: 0.3, 4: 0.15, 5: 0.1}  # digits per composed number
MAX_DIGITS = max(LENGTH_MIX)

# One pair-reader sample: (field uint8 [28, PAIR_WIDTH], left label, right label, is pair,
# left end, right start, is digits)
PairSample = tuple[np.ndarray, int, int, int, float, float, int]


# --------------------------------------------------------------------------- digits as handwriting


def glyph(img: np.ndarray, rng: np.random.Generator, height: float, shear: float) -> np.ndarray | None:
    """One MNIST digit (white ink uint8) as handwriting at ``height`` px: scaled, slanted
    (``shear``: x shift per px up; negative leans right), a little rotated, its stroke
    thickened or thinned."""
    ys, xs = np.nonzero(img > 20)
    if len(ys) == 0:
        return None
    crop = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    s = height / crop.shape[0]
    w, h = max(1, int(round(crop.shape[1] * s))), max(1, int(round(height)))
    g = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    ang = math.radians(float(np.clip(rng.normal(0, 3), -8, 8)))
    # x' = x + shear * (y - h) (the bottom stays put), plus a small rotation about the centre
    c, si = math.cos(ang), math.sin(ang)
    m = np.array([[c, -si + shear, 0.0], [si, c, 0.0]])
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ m.T
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    m[:, 2] = -lo + 1
    size = (int(math.ceil(hi[0] - lo[0])) + 2, int(math.ceil(hi[1] - lo[1])) + 2)
    g = cv2.warpAffine(g, m, size, flags=cv2.INTER_LINEAR)
    k = int(rng.choice([0, 0, 0, 3, 3, 5, -3]))
    if k > 0:
        g = cv2.dilate(g, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    elif k < 0:
        thin = cv2.erode(g, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
        if int(thin.sum()) > 0.4 * int(g.sum()):
            g = thin
    ys, xs = np.nonzero(g > 20)
    if len(ys) == 0:
        return None
    return g[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def next_to(left: np.ndarray, left_dy: int, right: np.ndarray, right_dy: int, overlap: int) -> int:
    """x offset of ``right`` from ``left`` (bottoms on the baseline, shifted by ``dy``) so
    their strong ink overlaps by ``overlap`` px on some shared row (negative: a gap)."""
    la, ra = left >= 128, right >= 128
    need = None
    for r in np.nonzero(ra.any(axis=1))[0]:
        lr = r - right.shape[0] + right_dy + left.shape[0] - left_dy  # same baseline row in left
        if 0 <= lr < left.shape[0] and la[lr].any():
            n = int(np.nonzero(la[lr])[0].max()) + 1 - int(np.nonzero(ra[r])[0].min())
            need = n if need is None else max(need, n)
    if need is None:
        need = left.shape[1]
    return need - overlap


def compose(glyphs: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Glyphs side by side, touching: ``(ink uint8, [(x0, x1) of each glyph's ink])``."""
    dys = [int(round(rng.uniform(-0.05, 0.05) * g.shape[0])) for g in glyphs]
    xs = [0]
    for i in range(1, len(glyphs)):
        overlap = int(rng.choice([-2, -1, 0, 1, 1, 2, 2, 3, 4]))
        xs.append(xs[-1] + next_to(glyphs[i - 1], dys[i - 1], glyphs[i], dys[i], overlap))
    x_min = min(xs)
    xs = [x - x_min for x in xs]
    base = max(g.shape[0] - dy for g, dy in zip(glyphs, dys))
    tops = [base - g.shape[0] + dy for g, dy in zip(glyphs, dys)]
    y_min = min(tops)
    h = max(t - y_min + g.shape[0] for t, g in zip(tops, glyphs))
    w = max(x + g.shape[1] for x, g in zip(xs, glyphs))
    out = np.zeros((h, w), np.uint8)
    for g, x, t in zip(glyphs, xs, tops):
        region = out[t - y_min : t - y_min + g.shape[0], x : x + g.shape[1]]
        np.maximum(region, g, out=region)
    return out, [(x, x + g.shape[1]) for x, g in zip(xs, glyphs)]


def cut(ink: np.ndarray, spans: list[tuple[int, int]], lo: int | None, hi: int | None,
         ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``ink`` with the columns before ``lo`` and from ``hi`` on erased, trimmed; spans moved."""
    ink = ink.copy()
    if lo is not None:
        ink[:, : max(lo, 0)] = 0
    if hi is not None:
        ink[:, hi:] = 0
    cols = np.nonzero(ink.max(axis=0) > 20)[0]
    rows = np.nonzero(ink.max(axis=1) > 20)[0]
    if len(cols) == 0:
        return ink[:0, :0], spans
    x0 = int(cols[0])
    ink = ink[rows[0] : rows[-1] + 1, x0 : cols[-1] + 1]
    return ink, [(a - x0, b - x0) for a, b in spans]


def compose_chunks(make_chunk: Callable[[tuple[np.ndarray, np.ndarray, int, int]], tuple[np.ndarray, ...]],
                   images: np.ndarray, labels: np.ndarray, n: int, seed: int, workers: int = 1,
                   max_chunks: int | None = None) -> tuple[np.ndarray, ...]:
    """``n`` composed samples from ``make_chunk((images, labels, count, seed))`` in chunks
    of about 2,000 (at most ``max_chunks``), each with its own seed so the result does not
    depend on ``workers``; each of the chunks' arrays concatenated."""
    chunks = max(1, n // 2000 if max_chunks is None else min(max_chunks, n // 2000))
    jobs = [(images, labels, n // chunks + (1 if i < n % chunks else 0), seed * 1000 + i) for i in range(chunks)]
    if workers > 1:
        with Pool(workers) as pool:
            parts = pool.map(make_chunk, jobs)
    else:
        parts = [make_chunk(j) for j in jobs]
    return tuple(np.concatenate(p) for p in zip(*parts))


# --------------------------------------------------------------------------- the pair reader's samples


def pair_input(ink: np.ndarray, rng: np.random.Generator, height: float) -> np.ndarray:
    """A composed crop as the pair reader's uint8 input, defocused now and then (digits
    and marks alike, so blur tells the reader nothing)."""
    if rng.random() < 0.3:
        ink = cv2.GaussianBlur(ink, (0, 0), rng.uniform(0.4, 1.0) * height / 28)
    return (fields.wide_field(ink, None, fields.PAIR_WIDTH) * 255 + 0.5).astype(np.uint8)


def pair_sample(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> PairSample | None:
    """One training crop of the pair reader: ``(field uint8 [28, PAIR_WIDTH], left label,
    right label, is pair, left end, right start, is digits)`` (labels -1 and ends 0 for
    a non-pair; "is digits": the ink is handwritten digits only, whole or cut, one or
    several), or ``None`` when the draw made no usable crop."""
    height = float(np.exp(rng.uniform(np.log(16), np.log(64))))
    slant = rng.uniform(-0.3, 0.15)
    kind = str(rng.choice(list(KIND_MIX), p=list(KIND_MIX.values())))
    if kind == "marks":
        return _marks_sample(rng, height)
    return _digits_sample(images, labels, rng, height, slant, kind)


def _marks_sample(rng: np.random.Generator, height: float) -> PairSample | None:
    """No digits: a scribble stretched to a pair's width, or letters (handwritten or
    printed), or a stretch of a word between two vertical cuts (as a cut lattice leaves
    it), ``height`` px tall."""
    mark_kind = rng.choice(list(MARK_MIX), p=list(MARK_MIX.values()))
    if mark_kind == "scribble":
        mark = scribble(rng)
        mark = cv2.resize(mark, (int(mark.shape[1] * rng.uniform(1.0, 2.5)), mark.shape[0]))
    elif mark_kind == "handwritten":
        mark = letters(rng)
    else:
        mark = printed(rng)
    ink = (np.clip(mark, 0, 1) * 255).astype(np.uint8)
    ink, _ = cut(ink, [], None, None)
    if ink.size and rng.random() < 0.3 and ink.shape[1] > ink.shape[0]:
        w = int(ink.shape[1] * rng.uniform(0.35, 0.8))
        lo = int(rng.integers(0, ink.shape[1] - w + 1))
        ink, _ = cut(ink, [], lo, lo + w)
        if ink.shape[1] < 0.6 * ink.shape[0]:
            return None  # a lone stroke: a 1 as much as a piece of a letter
    if ink.size == 0 or ink.shape[0] < 4:
        return None
    # Through MNIST's resolution first, as the digits come: a 20-px scan scaled up is
    # soft, a mark drawn at 80 px and scaled down is crisp, and a reader trained on
    # both learned to call crisp ink letters and soft ink digits; through a camera
    # everything is soft, and it passed most letters.
    low = rng.uniform(*MARK_SCAN_HEIGHT)
    ink = cv2.resize(ink, (max(1, round(ink.shape[1] * low / ink.shape[0])), round(low)),
                     interpolation=cv2.INTER_AREA)
    ink = cv2.resize(ink, (max(1, int(ink.shape[1] * height / ink.shape[0])), int(height)),
                     interpolation=cv2.INTER_LINEAR)
    return pair_input(ink, rng, height), -1, -1, 0, 0.0, 0.0, 0


def _digits_sample(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, height: float,
                   slant: float, kind: str) -> PairSample | None:
    """One, two (whole, or one of them cut in half) or three to four touching digits
    ``height`` px tall, now and then with a sliver of a neighbour at either side."""
    # three or four digits: a long touching number the live view may see whole
    n = {"pair": 2, "single": 1, "triple": int(rng.integers(3, 5)), "half": 2}[kind]
    left_ctx, right_ctx = rng.random() < 0.3, rng.random() < 0.3
    idx = rng.integers(len(images), size=n + 2)
    glyphs = []
    for i in idx:
        g = glyph(images[i], rng, height * rng.uniform(0.9, 1.1), slant + rng.normal(0, 0.05))
        if g is None:
            return None
        glyphs.append(g)
    core = list(range(1, n + 1))  # glyph 0 and n + 1 are the possible context slivers
    use = ([0] if left_ctx else []) + core + ([n + 1] if right_ctx else [])
    ink, spans = compose([glyphs[i] for i in use], rng)
    first = 1 if left_ctx else 0
    core_spans = spans[first : first + n]
    lo = hi = None
    if left_ctx:
        # a vertical cut somewhere in the overlap of the sliver and the first digit
        a, b = sorted((core_spans[0][0], spans[0][1]))
        lo = int(rng.integers(a - 1, b + 2))
    if right_ctx:
        a, b = sorted((spans[-1][0], core_spans[-1][1]))
        hi = int(rng.integers(a - 1, b + 2))
    if kind == "half":
        # one of the two digits cut through its middle: not a pair of whole digits
        if rng.random() < 0.5:
            x0, x1 = core_spans[1]
            hi = int(x0 + rng.uniform(0.3, 0.6) * (x1 - x0))
        else:
            x0, x1 = core_spans[0]
            lo = int(x0 + rng.uniform(0.4, 0.7) * (x1 - x0))
    ink, spans = cut(ink, spans, lo, hi)
    if ink.size == 0 or ink.shape[0] < 4 or ink.shape[1] < 2:
        return None
    field = pair_input(ink, rng, height)
    if kind != "pair":
        return field, -1, -1, 0, 0.0, 0.0, 1
    core_spans = spans[first : first + 2]
    w = ink.shape[1]
    end = float(np.clip(core_spans[0][1] / w, 0, 1))
    start = float(np.clip(core_spans[1][0] / w, 0, 1))
    a, b = (int(labels[idx[i]]) for i in core)
    return field, a, b, 1, end, start, 1


def _pair_chunk(args: tuple[np.ndarray, np.ndarray, int, int]) -> tuple[np.ndarray, ...]:
    images, labels, n, seed = args
    rng = np.random.default_rng(seed)
    crops, rows = [], []
    while len(crops) < n:
        s = pair_sample(images, labels, rng)
        if s is not None:
            crops.append(s[0])
            rows.append(s[1:])
    r = np.array(rows, np.float64)
    return (np.stack(crops), r[:, 0].astype(np.int64), r[:, 1].astype(np.int64),
            r[:, 2].astype(np.float32), r[:, 3:5].astype(np.float32), r[:, 5].astype(np.float32))


def make_pairs(images: np.ndarray, labels: np.ndarray, n: int, seed: int, workers: int = 1,
               ) -> tuple[np.ndarray, ...]:
    """``n`` pair-reader crops: ``(fields uint8 [n, 28, PAIR_WIDTH], left [n], right [n],
    is pair [n], ends [n, 2], is digits [n])``."""
    return compose_chunks(_pair_chunk, images, labels, n, seed, workers, max_chunks=64)


# --------------------------------------------------------------------------- the number reader's samples


def number_sample(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                  ) -> tuple[np.ndarray, list[int]] | None:
    """One composed number: ``(field uint8 [28, NUMBER_WIDTH], its digits)``, or ``None``
    when a drawn MNIST image had no ink."""
    height = float(np.exp(rng.uniform(np.log(16), np.log(64))))
    slant = rng.uniform(-0.3, 0.15)
    n = int(rng.choice(list(LENGTH_MIX), p=list(LENGTH_MIX.values())))
    idx = rng.integers(len(images), size=n)
    glyphs = []
    for i in idx:
        g = glyph(images[i], rng, height * rng.uniform(0.9, 1.1), slant + rng.normal(0, 0.05))
        if g is None:
            return None
        glyphs.append(g)
    ink, _ = compose(glyphs, rng)
    if rng.random() < 0.3:
        ink = cv2.GaussianBlur(ink, (0, 0), rng.uniform(0.4, 1.0) * height / 28)
    field = fields.wide_field(ink, None, fields.NUMBER_WIDTH)
    return (field * 255 + 0.5).astype(np.uint8), [int(labels[i]) for i in idx]


def _number_chunk(args: tuple[np.ndarray, np.ndarray, int, int]) -> tuple[np.ndarray, np.ndarray]:
    images, labels, n, seed = args
    rng = np.random.default_rng(seed)
    crops, rows = [], []
    while len(crops) < n:
        s = number_sample(images, labels, rng)
        if s is not None:
            crops.append(s[0])
            rows.append(s[1] + [-1] * (MAX_DIGITS - len(s[1])))
    return np.stack(crops), np.array(rows, np.int64)


def make_numbers(images: np.ndarray, labels: np.ndarray, n: int, seed: int, workers: int = 1,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` composed numbers: ``(fields uint8 [n, 28, NUMBER_WIDTH], digits [n, MAX_DIGITS])``,
    the digits padded with -1."""
    crops, digits = compose_chunks(_number_chunk, images, labels, n, seed, workers)
    return crops, digits


# --------------------------------------------------------------------------- marks that are no digits


def smooth(points: np.ndarray, rounds: int) -> np.ndarray:
    """Chaikin corner cutting: a skeleton's corners rounded the way a pen rounds them."""
    for _ in range(rounds):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        points = np.concatenate([points[:1], np.stack([q, r], 1).reshape(-1, 2), points[-1:]])
    return points


def scribble(rng: np.random.Generator) -> np.ndarray:
    """A smooth random curve through 5-8 points on a 112x112 canvas."""
    canvas = np.zeros((112, 112), np.float32)
    # five or more turns: three or four make plain curves that look like 1, 7, 0 or 2
    n = int(rng.integers(5, 9))
    pts = rng.uniform(10, 102, size=(n, 2))
    pts = smooth(pts, 3)  # curves, not zigzags
    cv2.polylines(canvas, [np.round(pts).astype(np.int32)], False, 1.0, int(rng.integers(4, 13)), cv2.LINE_AA)
    return canvas


def dash(rng: np.random.Generator) -> np.ndarray:
    """A short near-horizontal stroke on a 112x112 canvas (never near-vertical: that is a 1)."""
    canvas = np.zeros((112, 112), np.float32)
    ang = np.deg2rad(rng.uniform(-25, 25))
    length = rng.uniform(40, 100)
    c = np.array([56.0, 56.0])
    d = np.array([np.cos(ang), np.sin(ang)]) * length / 2
    p0, p1 = np.round(c - d).astype(int), np.round(c + d).astype(int)
    cv2.line(canvas, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1.0, int(rng.integers(5, 14)), cv2.LINE_AA)
    return canvas


def overlapped_pair(rng: np.random.Generator, images: np.ndarray) -> np.ndarray:
    """Two of ``images`` (uint8 MNIST fields) side by side, overlapping 2-8 px, the right
    one a little up or down: a blob of two digits that the digit network must not read
    as one."""
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


def letter_count_and_pool(rng: np.random.Generator) -> tuple[int, list[str]]:
    """How many letters a generated word has and the letters it draws from: a single
    letter most often (the live pipeline reads each separate mark on its own), else two
    to four; all lower case or, less often, all capitals."""
    n = 1 if rng.random() < 0.5 else int(rng.integers(2, 5))
    upper = rng.random() < 0.3
    return n, [k for k in LETTER_STROKES if k.isupper() == upper]


def letters(rng: np.random.Generator) -> np.ndarray:
    """One to four letters in a row, written with one slant, size and pen.

    Letters vary the way hands and fonts do: narrow to wide, upright to strongly italic,
    sharp corners or round arches, thin or heavy strokes, separate or joined by a
    ligature at the baseline. A pair reader trained on one narrow style rejected exactly
    that style and still read rounder, wider, heavier letters (an italic n, u or H) as
    two 1s."""
    canvas = np.zeros((112, 320), np.float32)
    n, pool = letter_count_and_pool(rng)
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
            xy = smooth(np.stack([px, py], axis=1), rounds) if len(stroke) > 2 else np.stack([px, py], axis=1)
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
def printed_font(name: str, size: int):  # -> PIL.ImageFont.FreeTypeFont
    """One of :data:`PRINTED_FONTS` (a matplotlib font file) at ``size`` px, loaded once."""
    import matplotlib
    from PIL import ImageFont

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / f"{name}.ttf"), size)


def printed(rng: np.random.Generator) -> np.ndarray:
    """One to four printed letters (the letters of :data:`LETTER_STROKES`): a heading,
    a form's label or a typed word on the sheet. Handwriting-like generated letters
    alone left the pair reader passing clean, even-stroked letters as digits: printed
    ones in a font it never saw got through about as often as the benchmark's."""
    from PIL import Image, ImageDraw

    n, pool = letter_count_and_pool(rng)
    text = "".join(rng.choice(pool, size=n))
    face = printed_font(str(rng.choice(PRINTED_FONTS)), 80)
    left, top, right, bottom = face.getbbox(text)
    image = Image.new("L", (right - left + 40, bottom - top + 40), 0)
    ImageDraw.Draw(image).text((20 - left, 20 - top), text, fill=255, font=face)
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

