"""How each blob may be read, and the choice among its readings: pure functions.

A blob may be one digit, a piece of a broken digit (a 5's bar, a 3's bowl), or several
touching digits. Nothing here looks at pixels beyond the blobs' boxes and masks, and
nothing runs a network: this module proposes the crops the readers read, and chooses
among the readings they give back.

1. :func:`propose`: every blob, and the union of every pair of blobs that may be the
   pieces of one broken digit (:func:`piece_pairs`), for the digit reader.
2. :func:`refine`: for the wide blobs the digit reader is not sure of, the stretches of
   a cut lattice (cut points at the valleys of the ink profile) for the digit reader,
   and the stretches that may be two touching digits for the pair reader.
3. :func:`options`: per blob, its whole reading and its best chains of stretches from
   its left side to its right (:func:`best_chain`, or :func:`chains_by_reading` when the
   number reader will weigh in); :func:`contested` names the blobs whose readings are
   close enough for the number reader to decide.
4. :func:`choose`: per blob the best reading (weighing in the number reader's
   likelihoods), then pairs of pieces read as one digit where that beats their own.

The crops travel through an explicit map (:class:`Plan`): each reading names the crop it
came from by index, never by position in a tuple.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeVar

import cv2
import numpy as np

from realtime.geometry import candidate_pairs, reading_order
from realtime.readers import DigitReadings, PairReadings
from realtime.segment import Blob


@dataclass(frozen=True)
class SplitConfig:
    # reading a blob whole, or as several digits
    split_min_aspect: float = 0.9  # from this width / height a blob gets a cut lattice (touching digits overlap)
    whole_max_aspect: float = 1.7  # a blob wider than this is read only as several digits (a slanted 2 is wide)
    sure_whole: float = 0.8  # a blob read whole at least this sure (and narrow enough) gets no lattice and no pair reader
    max_unsure: int = 32  # at most this many blobs per frame are cut (a page of print offers hundreds) ...
    max_crops: int = 320  # ... until the digit reader has this many crops ...
    max_pair_crops: int = 320  # ... or the pair reader this many (rendered chains of touching numbers need ~200)
    part_min_height: float = 0.55  # a part spans at least this share of its blob's height (one number, one size)
    # the cut lattice
    cuts_per_width: float = 4.0  # cut points offered per blob height of width (the deepest valley is often wrong)
    min_cuts: int = 2  # at least this many cut points ...
    max_cuts: int = 10  # ... and at most this many
    cut_margin: float = 0.1  # no cut closer than this share of the height to the blob's side (slivers read as 1s)
    cut_spacing: float = 0.12  # cut points at least this share of the height apart (a stroke's width)
    part_min_width: float = 0.1  # a part is at least this share of the height wide (a narrow 1) ...
    part_max_width: float = 1.25  # ... and at most this (a wide 0)
    # the chain of parts
    split_bonus: float = 0.1  # each part of a chain (and a whole reading) scores this in log units
    split_margin: float = 0.0  # a chain must beat the whole reading by a factor of 1 + this
    split_min_conf: float = 0.03  # parts read below this are not used (a weak part lets a long chain through)
    max_parts: int = 8  # digits in one blob at most
    keep_readings: int = 64  # digit strings kept per cut point when chains are kept by reading
    # pieces read as one digit
    merge_min_conf: float = 0.5  # the union must be read at least this sure, as a digit
    max_union: int = 4  # a digit is at most this many pieces
    bridge: float = 0.12  # gaps between a union's pieces up to this share of its height are inked over (pen skips)
    piece_max_aspect: float = 1.2  # the union is at most this wide for its height ...
    piece_min_share: float = 0.4  # ... the taller piece at least this share of its height ...
    piece_max_gap: float = 0.2  # ... the pieces at most this share of its height apart ...
    piece_stack_overlap: float = 0.3  # ... and stacked (x-overlap of the narrower) ...
    piece_side_overlap: float = 0.6  # ... or side by side (y-overlap of the shorter)
    # the pair reader
    pair_min_aspect: float = 0.6  # blobs and stretches from this width / height are read as two digits ...
    pair_max_aspect: float = 2.6  # ... up to this
    digits_gate: float = 0.7  # a blob the pair reader calls digits below this is read whole only (a word, a letter)
    digits_drop: float = 0.05  # below this it is not read at all (unless joined with a piece)
    # the number reader
    seq_weight: float = 0.2  # how much its log-likelihood of a reading counts beside the other readers' scores
    seq_min_aspect: float = 0.9  # it is asked only about blobs at least this wide for their height ...
    seq_contest: float = 3.0  # ... whose second-best reading is within this (log units) of the best


@dataclass(frozen=True)
class Merge:
    """Marks that may be the pieces of one broken digit (``members``: indices into the
    blobs, then the pieces after them); their union is crop ``crop``."""

    members: tuple[int, ...]
    crop: int


@dataclass(frozen=True)
class Edge:
    """A stretch of a blob between its cut points ``start`` < ``end``: digit-reader crop
    ``crop``, or pair-reader crop ``crop`` when ``pair`` (read as two digits)."""

    start: int
    end: int
    crop: int
    pair: bool = False


@dataclass(frozen=True)
class Lattice:
    """A blob's cut points (``points``, sides included) and its digit-sized stretches."""

    points: int
    edges: tuple[Edge, ...]


@dataclass
class Plan:
    """The map between blobs and the crops the readers read.

    ``crops``: the digit reader's crops (the blobs first, in order, then the unions of
    ``merges``, then the lattices' stretches); ``pair_crops``: the pair reader's (the
    stretches in ``pair_edges``, then any blob it reads whole only for its "digits"
    answer); ``pair_whole``: per blob, its own pair crop."""

    blobs: list[Blob]
    crops: list[Blob]
    merges: list[Merge] = field(default_factory=list)
    pieces: list[Blob] = field(default_factory=list)  # marks too small to be digits, read only within a union
    lattices: dict[int, Lattice] = field(default_factory=dict)
    pair_edges: dict[int, list[Edge]] = field(default_factory=dict)
    pair_crops: list[Blob] = field(default_factory=list)
    pair_whole: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Part:
    """One digit (or, ``pair``, two touching digits) of a reading: a crop of the digit
    reader (or of the pair reader)."""

    crop: int
    pair: bool = False


@dataclass(frozen=True)
class Reading:
    """One way of reading a blob as several digits: the digits it spells (``None`` when
    only the best chain was kept), its parts left to right and its score (log units)."""

    text: str | None
    parts: tuple[Part, ...]
    score: float


@dataclass(frozen=True)
class Options:
    """How a blob may be read: whole (its digit and score; ``None`` when too wide to be
    one digit) and split (its best readings as several digits)."""

    whole: tuple[str, float] | None
    splits: tuple[Reading, ...]

    def texts(self) -> set[str]:
        """The digit strings the readings spell (the number reader scores these)."""
        out = {r.text for r in self.splits if r.text is not None}
        return out | ({self.whole[0]} if self.whole else set())


# ---- pieces of one digit ---------------------------------------------------------------

def piece_pairs(boxes: Sequence[Sequence[int]], cfg: SplitConfig = SplitConfig()) -> list[tuple[int, int]]:
    """Pairs of blobs that may be two pieces of one broken digit: ``(i, j)``, i < j.

    A digit drawn with a faint or skipping pen can break into pieces that are each
    digit-like: a 3's two bowls stacked, a 0's two sides, a 7's bar above its stem.
    Merging them by geometry alone would also merge digits of consecutive rows and
    neighbours in a number, so this only proposes the pairs; the readers decide. A pair
    is proposed when the union of the two boxes is shaped like one digit and the pieces
    are close, either stacked or side by side (``cfg.piece_*``).
    """
    if len(boxes) < 2:
        return []
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    x0, y0 = b[:, 0], b[:, 1]
    x1, y1 = x0 + b[:, 2], y0 + b[:, 3]
    w, h = b[:, 2], b[:, 3]
    # side by side, the gap is at most piece_max_gap of a union at most 1 / piece_min_share as tall as the taller
    reach = cfg.piece_max_gap / cfg.piece_min_share * float(np.percentile(h, 90))
    i, j = candidate_pairs(x0, x1, reach)
    ux = np.maximum(x1[i], x1[j]) - np.minimum(x0[i], x0[j])
    uy = np.maximum(y1[i], y1[j]) - np.minimum(y0[i], y0[j])
    ox = np.minimum(x1[i], x1[j]) - np.maximum(x0[i], x0[j])  # < 0: a gap
    oy = np.minimum(y1[i], y1[j]) - np.maximum(y0[i], y0[j])
    narrower = np.minimum(w[i], w[j])
    shorter = np.minimum(h[i], h[j])
    taller = np.maximum(h[i], h[j])
    shaped = (ux <= cfg.piece_max_aspect * uy) & (taller >= cfg.piece_min_share * uy)
    stacked = (ox >= cfg.piece_stack_overlap * narrower) & (-oy <= cfg.piece_max_gap * uy)
    side = (oy >= cfg.piece_side_overlap * shorter) & (-ox <= cfg.piece_max_gap * uy)
    ok = shaped & (stacked | side)
    return sorted((int(a), int(c)) for a, c in zip(i[ok], j[ok]))


# a pen skip in a union taller than this vanishes when its digit is reduced to MNIST's 20 px
BRIDGE_MAX_PX = 160


def merge_pieces(parts: Sequence[Blob], ink: np.ndarray | None = None, bridge: float = 0.0) -> Blob:
    """One blob of several: the union box, and their masks in it. With ``ink`` (the ink
    map) and ``bridge``, the gaps between two different parts up to ``bridge`` of the
    union's height are inked over with their ink's grey closing, as a pen that skipped
    would have drawn them: the readers never saw a digit with holes in its strokes."""
    x = min(p.box[0] for p in parts)
    y = min(p.box[1] for p in parts)
    w = max(p.box[0] + p.box[2] for p in parts) - x
    h = max(p.box[1] + p.box[3] for p in parts) - y
    mask = np.zeros((h, w), bool)
    near = np.zeros((h, w), np.uint8)
    # a skip is a stroke's width or two wide, not a share of a huge union
    k = int(np.clip(round(bridge * h), 3, 15)) | 1
    ellipse = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    for p in parts:
        px, py, pw, ph = p.box
        mask[py - y : py - y + ph, px - x : px - x + pw] |= p.mask
        if ink is not None and bridge > 0 and h <= BRIDGE_MAX_PX:
            own = np.zeros((h, w), np.uint8)
            own[py - y : py - y + ph, px - x : px - x + pw] = p.mask
            near += cv2.dilate(own, ellipse)
    union = Blob(box=(x, y, w, h), mask=mask)
    if ink is None or bridge <= 0 or h > BRIDGE_MAX_PX:
        return union
    patch = union.ink(ink)
    closed = cv2.morphologyEx(patch, cv2.MORPH_CLOSE, ellipse)
    # only between two parts (a loop's hole or a stroke's bend is no gap), where the
    # skip also left the strokes' ends faint
    between = (near >= 2) & (closed > patch)
    if not between.any():
        return union
    patch = patch.copy()
    patch[between] = closed[between]
    return Blob(box=(x, y, w, h), mask=mask | between, patch=patch)


def _clusters(n: int, pairs: Sequence[tuple[int, int]]) -> list[list[int]]:
    """The connected groups of ``n`` marks linked by ``pairs`` (only groups of two or more)."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) >= 2]


def propose(blobs: Sequence[Blob], cfg: SplitConfig = SplitConfig(), pieces: Sequence[Blob] = (),
            ink: np.ndarray | None = None, min_height: float = 0.0) -> Plan:
    """The first crops to read: every blob, then the union of every pair of marks (blobs
    and the ``pieces`` too small to be digits) that may be the parts of one broken
    digit, and of every larger group of them (up to ``max_union``) that together is
    shaped like one digit, at least ``min_height`` tall. With ``ink`` the unions' gaps
    are bridged (:func:`merge_pieces`)."""
    plan = Plan(blobs=list(blobs), crops=list(blobs), pieces=list(pieces))
    marks = plan.blobs + plan.pieces
    boxes = [m.box for m in marks]
    pairs = piece_pairs(boxes, cfg)
    tall = [(a, b) for a, b in pairs
            if max(boxes[a][1] + boxes[a][3], boxes[b][1] + boxes[b][3]) - min(boxes[a][1], boxes[b][1]) >= min_height]
    groups = [tuple(pair) for pair in tall]
    for group in _clusters(len(marks), pairs):
        if 3 <= len(group) <= cfg.max_union:
            x0 = min(boxes[i][0] for i in group)
            y0 = min(boxes[i][1] for i in group)
            x1 = max(boxes[i][0] + boxes[i][2] for i in group)
            y1 = max(boxes[i][1] + boxes[i][3] for i in group)
            if y1 - y0 >= min_height and x1 - x0 <= cfg.piece_max_aspect * (y1 - y0):
                groups.append(tuple(group))
    for members in groups:
        plan.merges.append(Merge(tuple(sorted(members)), len(plan.crops)))
        plan.crops.append(merge_pieces([marks[i] for i in members], ink, cfg.bridge))
    return plan


# ---- cut lattices ----------------------------------------------------------------------

def max_cuts(w: int, h: int, cfg: SplitConfig = SplitConfig()) -> int:
    """Cut points offered in a blob's lattice: ``cuts_per_width`` per blob height of width."""
    return int(np.clip(round(cfg.cuts_per_width * w / h), cfg.min_cuts, cfg.max_cuts))


def _profile(mask: np.ndarray) -> np.ndarray:
    """A blob's ink per column, smoothed over 3 columns (float64)."""
    return np.convolve(mask.sum(axis=0).astype(np.float64), np.ones(3) / 3, mode="same")


def cut_points(blob: Blob, n_cuts: int, cfg: SplitConfig = SplitConfig()) -> list[int]:
    """A blob's cut points: its two sides and up to ``n_cuts`` columns (relative to its
    box) where its ink profile has a valley (no higher than the columns on either side:
    a profile that merely rises from the blob's side inward would offer a cut that
    shaves a sliver off one digit), the lowest ones first, a stroke's width apart."""
    proj = _profile(blob.mask)
    w, h = len(proj), blob.box[3]
    margin = max(2, int(cfg.cut_margin * h))
    inner = np.arange(margin, w - margin)
    cuts: list[int] = []
    if len(inner):
        p = proj[inner]
        minima = inner[(p <= proj[inner - 1]) & (p <= proj[inner + 1])]
        spacing = max(2, int(cfg.cut_spacing * h))
        for c in sorted(minima.tolist(), key=lambda c: (proj[c], c)):
            if all(abs(c - o) >= spacing for o in cuts):
                cuts.append(int(c))
            if len(cuts) >= n_cuts:
                break
    return [0, *sorted(cuts), w]


def stretches(blob: Blob, points: Sequence[int], min_w: float, max_w: float, min_height: float,
              ) -> list[tuple[int, int, Blob]]:
    """The stretches of a blob between two of its cut ``points`` (columns relative to
    its box, sides included) from ``min_w`` to ``max_w`` px wide, the whole blob left
    out, each as ``(i, j, part)``: points ``i < j`` and the part's pixels with a tight
    box, kept when the part is at least ``min_height`` of the blob's height tall."""
    x, y, w, h = blob.box
    # per column: its first and last ink row (h and -1 for an empty column); per column
    # index: the nearest ink column at or after it, and at or before it. Each stretch's
    # tight box is then a few scalar lookups instead of numpy calls on its pixels.
    has = blob.mask.any(axis=0)
    top = np.where(has, blob.mask.argmax(axis=0), h)
    bottom = np.where(has, h - 1 - blob.mask[::-1].argmax(axis=0), -1)
    cols = np.arange(w)
    next_ink = np.minimum.accumulate(np.where(has, cols, w)[::-1])[::-1].tolist() + [w]
    prev_ink = np.maximum.accumulate(np.where(has, cols, -1)).tolist()
    segs: list[tuple[int, int, Blob]] = []
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
            m = blob.mask[y0 : y1 + 1, x0:x1]
            segs.append((i, j, Blob(box=(x + x0, y + y0, x1 - x0, y1 + 1 - y0), mask=m)))
    return segs


def cut_lattice(blob: Blob, cfg: SplitConfig = SplitConfig(), n_cuts: int = 10) -> tuple[int, list[tuple[int, int, Blob]]]:
    """Over-segment a blob that may hold touching digits: ``(number of cut points,
    [(i, j, part)])``, every digit-sized stretch between two cut points. The readers
    read them all and :func:`best_chain` picks the chain from the first point to the
    last that they read most confidently, so the number of digits in the blob is decided
    by the readers, not guessed from its width."""
    h = blob.box[3]
    points = cut_points(blob, n_cuts, cfg)
    min_w = max(2, int(cfg.part_min_width * h))
    return len(points), stretches(blob, points, min_w, cfg.part_max_width * h, cfg.part_min_height)


def is_sure(blob: Blob, confidence: float, cfg: SplitConfig = SplitConfig()) -> bool:
    """Whether the digit reader's reading of a whole blob settles it (``sure_whole``)."""
    return blob.box[2] <= cfg.whole_max_aspect * blob.box[3] and confidence >= cfg.sure_whole


def _pair_stretches(blob: Blob, cfg: SplitConfig) -> list[tuple[int, int, Blob]]:
    """The stretches of a blob the pair reader reads as two digits: those of its
    lattice from ``pair_min_aspect`` to ``pair_max_aspect`` heights wide (the same cut
    points as its digit lattice), and, when it is not too wide, the whole blob, in the
    lattice's order: after the stretches from its left side."""
    w, h = blob.box[2], blob.box[3]
    points = cut_points(blob, max_cuts(w, h, cfg), cfg) if w / h >= cfg.split_min_aspect else [0, w]
    parts = stretches(blob, points, cfg.pair_min_aspect * h, cfg.pair_max_aspect * h, cfg.part_min_height)
    if w <= cfg.pair_max_aspect * h:
        first = sum(1 for i, _, _ in parts if i == 0)
        parts.insert(first, (0, len(points) - 1, blob))
    return parts


def _most_plausible(blobs: Sequence[Blob], chosen: list[int], most: int) -> list[int]:
    """``chosen`` (blob indices), at most ``most`` of them: those whose heights are nearest
    the median height of all ``blobs``, in their own order."""
    if len(chosen) <= most:
        return chosen
    typical = float(np.median([b.box[3] for b in blobs]))
    ranked = sorted(chosen, key=lambda n: (abs(np.log(blobs[n].box[3] / typical)), n))[:most]
    return sorted(ranked)


def refine(plan: Plan, whole: DigitReadings, cfg: SplitConfig = SplitConfig(), pairs: bool = True) -> Plan:
    """The crops for the blobs the first reading leaves unsure: the cut lattices of the
    wide ones (appended to ``plan.crops``) and, with ``pairs``, the stretches the pair
    reader reads as two digits (``plan.pair_crops``). ``whole``: the digit reader's
    reading of (at least) every blob. At most ``max_unsure`` blobs are cut, those whose
    height is nearest the frame's typical blob's (digits on one page share a size; a
    page of print or scribbles offers hundreds of wide marks): the work per frame is
    bounded whatever the camera sees."""
    for n in _most_plausible(plan.blobs, [n for n, b in enumerate(plan.blobs)
                                          if not is_sure(b, float(whole.confidence[n]), cfg)
                                          and b.box[2] >= min(cfg.split_min_aspect, cfg.pair_min_aspect) * b.box[3]],
                             cfg.max_unsure):
        blob = plan.blobs[n]
        w, h = blob.box[2], blob.box[3]
        if len(plan.crops) >= cfg.max_crops or len(plan.pair_crops) >= cfg.max_pair_crops:
            break  # the frame's budget is spent on the most plausible blobs
        if w / h >= cfg.split_min_aspect:
            n_points, segs = cut_lattice(blob, cfg, n_cuts=max_cuts(w, h, cfg))
            edges = tuple(Edge(i, j, len(plan.crops) + k) for k, (i, j, _) in enumerate(segs))
            plan.lattices[n] = Lattice(n_points, edges)
            plan.crops.extend(part for _, _, part in segs)
        if pairs and w / h >= cfg.pair_min_aspect:
            for i, j, part in _pair_stretches(blob, cfg):
                if part is blob:
                    plan.pair_whole[n] = len(plan.pair_crops)
                plan.pair_edges.setdefault(n, []).append(Edge(i, j, len(plan.pair_crops), pair=True))
                plan.pair_crops.append(part)
    # each blob the pair reader sees is also read whole, for its "digits" answer
    for n in plan.pair_edges:
        if n not in plan.pair_whole:
            plan.pair_whole[n] = len(plan.pair_crops)
            plan.pair_crops.append(plan.blobs[n])
    return plan


def doubted(plan: Plan, pairs: PairReadings, threshold: float) -> set[int]:
    """The blobs whose whole reading by the pair reader says "digits" below ``threshold``."""
    return {n for n, k in plan.pair_whole.items() if pairs.digits[k] < threshold}


# ---- chains of parts -------------------------------------------------------------------

K = TypeVar("K", int, str)
Seg = tuple[int, int, float] | tuple[int, int, float, int]


def _chains(n_points: int, segs: Sequence[Seg], min_conf: float, bonus: float, start: K,
            extend: Callable[[K, int, int], K | None], keep: int | None = None) -> dict[K, tuple[float, list[int]]]:
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


def best_chain(n_points: int, segs: Sequence[Seg], min_conf: float = 0.5, bonus: float = 0.0,
               max_parts: int = 8) -> tuple[list[int], float]:
    """The chain of segments from point 0 to point ``n_points - 1`` the readers believe
    most: the highest sum of ``log(confidence) + bonus`` (``bonus`` = 0: the product of
    the confidences, so every extra cut must pay for itself; a chunk of a digit read as
    a confident "1" is not enough). Segments below ``min_conf`` are not used. ``segs``:
    ``(i, j, confidence)``, or ``(i, j, confidence, digits)`` for a stretch read as
    several digits at once (it scores ``digits`` bonuses). Returns ``(segment indices,
    score)``, or ``([], -inf)`` when no chain exists."""
    # keyed by the number of digits so far: the best k-digit chain to each point
    ends = _chains(n_points, segs, min_conf, bonus, 0, lambda k, _s, n: k + n if k + n <= max_parts else None)
    if not ends:
        return [], float("-inf")
    score, path = max(ends.values(), key=lambda v: v[0])
    return path, score


def chains_by_reading(n_points: int, segs: Sequence[Seg], readings: Sequence[str], min_conf: float = 0.5,
                      bonus: float = 0.0, max_parts: int = 8, keep: int = 64) -> dict[str, tuple[list[int], float]]:
    """:func:`best_chain` per reading: for each digit string the chains spell (``readings``:
    each segment's digits), the best chain that spells it, as ``{reading: (segment
    indices, score)}``. The ``keep`` best readings are kept at each point, which bounds
    the work on a long blob whose lattice spells hundreds."""
    def spell(text: str, s: int, _n: int) -> str | None:
        t = text + readings[s]
        return t if len(t) <= max_parts else None

    ends = _chains(n_points, segs, min_conf, bonus, "", spell, keep)
    return {t: (path, score) for t, (score, path) in ends.items()}


def _splits(n: int, plan: Plan, digits: DigitReadings, pairs: PairReadings, by_reading: bool,
            cfg: SplitConfig) -> tuple[Reading, ...]:
    """Blob ``n``'s best readings as several digits (see :func:`options`)."""
    blob = plan.blobs[n]
    lattice = plan.lattices.get(n, Lattice(2, ()))
    edges = list(lattice.edges) + plan.pair_edges.get(n, [])
    segs: list[Seg] = [(e.start, e.end, float(digits.confidence[e.crop])) for e in lattice.edges]
    segs += [(e.start, e.end, float(pairs.confidence[e.crop]), 2) for e in plan.pair_edges.get(n, [])]
    if by_reading and blob.box[2] >= cfg.seq_min_aspect * blob.box[3]:
        spelled = [pairs.spell(e.crop) if e.pair else str(digits.digit(e.crop)) for e in edges]
        found = chains_by_reading(lattice.points, segs, spelled, cfg.split_min_conf, cfg.split_bonus,
                                  cfg.max_parts, cfg.keep_readings)
        chains = [(text, path, sc) for text, (path, sc) in found.items()]
    else:
        chains = [(None, *best_chain(lattice.points, segs, cfg.split_min_conf, cfg.split_bonus, cfg.max_parts))]
    return tuple(Reading(text, tuple(Part(edges[e].crop, edges[e].pair) for e in path), sc)
                 for text, path, sc in chains if path)


def options(plan: Plan, digits: DigitReadings, pairs: PairReadings, unsplit: set[int] = frozenset(),
            by_reading: bool = False, cfg: SplitConfig = SplitConfig()) -> dict[int, Options]:
    """How each blob may be read: whole (the digit it reads as and that reading's score;
    ``None`` when too wide to be one digit) and split (the best chains of its lattice's
    stretches, some read as two touching digits by the pair reader). With
    ``by_reading`` the best chain for each digit string the chains spell, for the blobs
    from ``seq_min_aspect`` wide (for the number reader to choose among), else the best
    chain only. ``unsplit``: blobs that look like no digits (letters, a word): read
    whole only, never split."""
    out: dict[int, Options] = {}
    for n, blob in enumerate(plan.blobs):
        whole = None
        if blob.box[2] / blob.box[3] <= cfg.whole_max_aspect:
            whole = (str(digits.digit(n)), float(np.log(digits.confidence[n])) + cfg.split_bonus)
        splits: tuple[Reading, ...] = ()
        if (n in plan.lattices or n in plan.pair_edges) and n not in unsplit:
            splits = _splits(n, plan, digits, pairs, by_reading, cfg)
        out[n] = Options(whole, splits)
    return out


def contested(opts: dict[int, Options], cfg: SplitConfig = SplitConfig()) -> list[int]:
    """The blobs whose reading the number reader may change: split by reading, with a
    second reading (whole, or a chain spelling other digits) within ``seq_contest`` of
    the best one's score."""
    out = []
    for n, o in opts.items():
        if not o.splits or o.splits[0].text is None:
            continue
        scores = sorted([r.score for r in o.splits] + ([o.whole[1]] if o.whole else []))
        if len(scores) >= 2 and scores[-1] - scores[-2] < cfg.seq_contest:
            out.append(n)
    return out


# ---- the choice ------------------------------------------------------------------------

Chosen = list[tuple[Blob, np.ndarray]]


def _pair_digits(part: Blob, k: int, pairs: PairReadings, classes: int) -> Chosen:
    """A stretch read as two digits: each digit's box from the reader's split ends, its
    probabilities (the "not a digit" class, if any, at 0) scaled by the pair's."""
    x, y, w, h = part.box
    e = int(np.clip(round(float(pairs.ends[k, 0]) * w), 1, w))
    s = int(np.clip(round(float(pairs.ends[k, 1]) * w), 0, w - 1))
    out = []
    for (a, b), p in (((0, e), pairs.left[k]), ((s, w), pairs.right[k])):
        m = part.mask[:, a:b]
        rows = np.flatnonzero(m.any(axis=1))
        y0, y1 = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, h)
        probs = np.zeros(classes, np.float32)
        probs[:10] = p * float(pairs.pair[k])
        out.append((Blob(box=(x + a, y + y0, b - a, y1 - y0), mask=m[y0:y1]), probs))
    return out


def _best(n: int, o: Options, plan: Plan, digits: DigitReadings, pairs: PairReadings,
          likes: dict[str, float] | None, cfg: SplitConfig) -> tuple[Chosen | None, float]:
    """Blob ``n``'s reading (``None``: none) and its score: whole, or its best split when
    that clearly beats the whole. ``likes``: the number reader's log-likelihood of each
    digit string, weighed in with ``seq_weight``."""
    best: Chosen | None = [(plan.blobs[n], digits.probs[n])] if o.whole is not None else None
    score = o.whole[1] if o.whole is not None else float("-inf")
    splits = list(o.splits)
    if likes is not None:
        if o.whole is not None:
            score += cfg.seq_weight * likes[o.whole[0]]
        splits = [Reading(r.text, r.parts, r.score + cfg.seq_weight * likes[r.text]) for r in splits]
    if splits:
        top = max(splits, key=lambda r: r.score)
        if best is None or top.score > score + np.log1p(cfg.split_margin):
            best, score = [], top.score
            for p in top.parts:
                if p.pair:
                    best.extend(_pair_digits(plan.pair_crops[p.crop], p.crop, pairs, digits.classes))
                else:
                    best.append((plan.crops[p.crop], digits.probs[p.crop]))
    return best, score


def choose(plan: Plan, opts: dict[int, Options], digits: DigitReadings, pairs: PairReadings,
           dropped: set[int] = frozenset(), likes: dict[int, dict[str, float]] | None = None,
           cfg: SplitConfig = SplitConfig()) -> Chosen:
    """Per blob its whole reading or its best split (see :func:`options`); then marks are
    read as one digit where that reading scores higher than their own readings together
    (pieces, never read alone, score nothing). ``likes``: per blob the number reader asked about, its log-likelihood of
    each digit string (:meth:`Options.texts`). ``dropped``: blobs surely no digits, left
    out unless joined with another. Returns ``(crop, class probabilities)`` per digit."""
    likes = likes or {}
    best, scores = zip(*(_best(n, opts[n], plan, digits, pairs, likes.get(n), cfg)
                         for n in range(len(plan.blobs)))) if plan.blobs else ((), ())
    joined: dict[int, int] = {}
    conf = digits.confidence
    n_blobs = len(plan.blobs)
    # a piece is not read on its own: joining it costs nothing, and the ink it explains
    # counts like a part of a chain (so the union of all of a digit's pieces beats a part of it)
    gains = [(float(np.log(conf[m.crop])) + cfg.split_bonus
              + sum(-scores[i] if i < n_blobs else cfg.split_bonus for i in m.members), m.members, m.crop)
             for m in plan.merges]
    alone: Chosen = []
    for gain, members, k in sorted(gains, reverse=True):
        # the pieces must be read as one digit at least merge_min_conf, and better than
        # as what they are on their own
        if gain <= 0:
            break
        if conf[k] < cfg.merge_min_conf or not digits.is_digit(k):
            continue
        if any(i in joined for i in members):
            continue
        for i in members:
            joined[i] = -1
        if members[0] < n_blobs:
            joined[members[0]] = k
        else:
            alone.append((plan.crops[k], digits.probs[k]))
    chosen: Chosen = []
    for n, reading in enumerate(best):
        if n in joined:
            if joined[n] >= 0:
                chosen.append((plan.crops[joined[n]], digits.probs[joined[n]]))
        elif reading is not None and n not in dropped:
            chosen.extend(reading)
    if alone:
        # a digit made of pieces alone takes its place in reading order
        chosen = chosen + alone
        chosen = [chosen[i] for i in reading_order([c.box for c, _ in chosen])]
    return chosen
