"""Matching detected digits to ground truth, and the counts that summarise it.

Pure functions on plain data: boxes are ``[x, y, w, h]`` in pixels. A detection is a
dict or object with ``box`` and ``digit`` (``label`` is accepted too); a truth is a dict
or object with ``box`` and ``label`` (e.g. :class:`benchmarks.scenes.Truth`).

A detection *matches* a true digit when their IoU is at least ``iou_thr`` (0.3), or when
each box's centre lies inside the other box. The second rule accepts a box that is
right on the digit but sized differently (a segmenter that pads, or one that keeps only
the strong stroke), which IoU alone would reject for thin digits such as "1".

Matching is one-to-one and greedy: all candidate pairs are sorted by IoU, highest first
(ties by detection index, then truth index, so the result is deterministic), and a pair
is taken when neither side is taken yet. Greedy can differ from an optimal (Hungarian)
assignment only when several boxes crowd the same digits; it is simple, deterministic
and what detection benchmarks conventionally use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Box = Sequence[float]


def _get(obj: Any, *names: str) -> Any:
    """Field ``names[0]`` (or the first present fallback) of a mapping or an object."""
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj:
                return obj[name]
        elif hasattr(obj, name):
            return getattr(obj, name)
    raise KeyError(f"{obj!r} has none of the fields {', '.join(names)}")


def _box(obj: Any) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in _get(obj, "box"))
    return x, y, w, h


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``[x, y, w, h]`` boxes (0.0 when both are empty)."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    inter = max(0.0, iw) * max(0.0, ih)
    union = max(0.0, aw) * max(0.0, ah) + max(0.0, bw) * max(0.0, bh) - inter
    return inter / union if union > 0 else 0.0


def _centre_inside(a: Box, b: Box) -> bool:
    """Is the centre of box ``a`` inside box ``b`` (edges included)?"""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    cx, cy = ax + aw / 2.0, ay + ah / 2.0
    return bx <= cx <= bx + bw and by <= cy <= by + bh


def boxes_match(a: Box, b: Box, iou_thr: float = 0.3) -> bool:
    """The matching rule: IoU >= ``iou_thr`` or mutual centre containment."""
    return iou(a, b) >= iou_thr or (_centre_inside(a, b) and _centre_inside(b, a))


@dataclass
class MatchResult:
    """Outcome of :func:`match`; indices refer to the input sequences."""

    pairs: list[tuple[int, int]] = field(default_factory=list)  # (detection, truth), by truth index
    unmatched_detections: list[int] = field(default_factory=list)  # false positives
    missed_truths: list[int] = field(default_factory=list)  # false negatives


def match(detections: Sequence[Any], truths: Sequence[Any], iou_thr: float = 0.3) -> MatchResult:
    """Match detections to true digits one-to-one, greedily by IoU (see module docstring)."""
    det_boxes = [_box(d) for d in detections]
    true_boxes = [_box(t) for t in truths]
    candidates = []
    for i, db in enumerate(det_boxes):
        for j, tb in enumerate(true_boxes):
            if boxes_match(db, tb, iou_thr):
                candidates.append((-iou(db, tb), i, j))
    candidates.sort()
    used_d: set[int] = set()
    used_t: set[int] = set()
    pairs = []
    for _, i, j in candidates:
        if i not in used_d and j not in used_t:
            used_d.add(i)
            used_t.add(j)
            pairs.append((i, j))
    pairs.sort(key=lambda p: p[1])
    return MatchResult(
        pairs=pairs,
        unmatched_detections=[i for i in range(len(det_boxes)) if i not in used_d],
        missed_truths=[j for j in range(len(true_boxes)) if j not in used_t],
    )


@dataclass
class Counts:
    """Tallies over one or many frames; add them with ``+``, ``+=``, ``sum()`` or :meth:`update`.

    Ratios with a zero denominator are 1.0: nothing to find is all found (recall), no
    detections is no false alarms (precision), nothing matched is nothing misread
    (label accuracy), and nothing to read is all read. Report the counts alongside, so a
    1.0 from an empty set is never mistaken for a result.
    """

    true_digits: int = 0
    detections: int = 0
    matched: int = 0
    correct: int = 0  # matched and the label is right

    @staticmethod
    def _ratio(num: int, den: int) -> float:
        return num / den if den else 1.0

    @property
    def recall(self) -> float:
        """Fraction of true digits that were found (matched), label aside."""
        return self._ratio(self.matched, self.true_digits)

    @property
    def precision(self) -> float:
        """Fraction of detections that are on a true digit."""
        return self._ratio(self.matched, self.detections)

    @property
    def label_accuracy(self) -> float:
        """Of the matched digits, the fraction read with the right label."""
        return self._ratio(self.correct, self.matched)

    @property
    def read_correctly(self) -> float:
        """End to end: fraction of true digits found *and* read right."""
        return self._ratio(self.correct, self.true_digits)

    def update(self, other: Counts) -> Counts:
        """Add ``other`` into this one in place; returns self."""
        self.true_digits += other.true_digits
        self.detections += other.detections
        self.matched += other.matched
        self.correct += other.correct
        return self

    def __add__(self, other: Counts) -> Counts:
        if not isinstance(other, Counts):
            return NotImplemented
        return Counts(self.true_digits + other.true_digits, self.detections + other.detections,
                      self.matched + other.matched, self.correct + other.correct)

    def __radd__(self, other: Any) -> Counts:
        if other == 0:  # lets sum(counts_list) start from 0
            return Counts(self.true_digits, self.detections, self.matched, self.correct)
        return NotImplemented

    def __iadd__(self, other: Counts) -> Counts:
        if not isinstance(other, Counts):
            return NotImplemented
        return self.update(other)

    def as_dict(self) -> dict[str, float]:
        """Counts and ratios, for JSON reports."""
        return {
            "true_digits": self.true_digits, "detections": self.detections,
            "matched": self.matched, "correct": self.correct,
            "recall": self.recall, "precision": self.precision,
            "label_accuracy": self.label_accuracy, "read_correctly": self.read_correctly,
        }


def score_frame(detections: Sequence[Any], truths: Sequence[Any], iou_thr: float = 0.3) -> Counts:
    """Counts for one frame: match, then compare labels of matched pairs."""
    result = match(detections, truths, iou_thr)
    correct = sum(
        1 for i, j in result.pairs
        if int(_get(detections[i], "digit", "label")) == int(_get(truths[j], "label"))
    )
    return Counts(true_digits=len(truths), detections=len(detections), matched=len(result.pairs), correct=correct)


def score_frames(frames: Iterable[tuple[Sequence[Any], Sequence[Any]]], iou_thr: float = 0.3) -> Counts:
    """Sum of :func:`score_frame` over ``(detections, truths)`` pairs."""
    total = Counts()
    for detections, truths in frames:
        total += score_frame(detections, truths, iou_thr)
    return total
