"""Frame-to-frame tracking that steadies live labels: the one stateful stage.

Each digit is matched to its track from the previous frames by box overlap (candidate
pairs from a grid of box-sized cells, so a dense page costs O(n log n), not every pair); the track
keeps the class probabilities of its last ``window`` frames and reports their mean.
Its label changes only when the averaged evidence for another digit beats the current
label by a margin (hysteresis), so a steady camera shows steady labels while a real
change (a digit rewritten, a new sheet) still comes through within a few frames.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from realtime.recognizer import Detection


def _runs(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``keys``, the indices into ``sorted_keys`` holding that key: returned
    as (which key, index) pairs, all runs at once."""
    lo = np.searchsorted(sorted_keys, keys, side="left")
    counts = np.searchsorted(sorted_keys, keys, side="right") - lo
    which = np.repeat(np.arange(len(keys)), counts)
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    return which, starts + np.arange(len(which))


def _candidate_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) of boxes ``a[i]`` and ``b[j]`` ([N, 4] x, y, w, h) that may
    overlap: boxes bucketed on a grid whose cell is the largest side of any box, so two
    boxes that overlap have their corners in the same or neighbouring cells. On a page
    of similar digits each box meets a handful of others, so a dense frame costs
    O(n log n) rather than every track against every detection."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    cell = max(float(a[:, 2:].max()), float(b[:, 2:].max()), 1.0)
    low = np.minimum(a[:, :2].min(0), b[:, :2].min(0))
    ag = np.floor((a[:, :2] - low) / cell).astype(np.int64) + 1  # >= 1, so a neighbour is >= 0
    bg = np.floor((b[:, :2] - low) / cell).astype(np.int64) + 1
    rows = int(max(ag[:, 1].max(), bg[:, 1].max())) + 2
    order = np.argsort(bg[:, 0] * rows + bg[:, 1], kind="stable")
    sorted_keys = (bg[:, 0] * rows + bg[:, 1])[order]
    ai, bj = [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            which, at = _runs(sorted_keys, (ag[:, 0] + dx) * rows + ag[:, 1] + dy)
            ai.append(which)
            bj.append(order[at])
    return np.concatenate(ai), np.concatenate(bj)


def _iou_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of each row of ``a`` with the same row of ``b`` ([K, 4] x, y, w, h)."""
    ix = np.clip(np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = ix * iy
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_boxes(tracks: np.ndarray, dets: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Greedy one-to-one matching by descending IoU, pairs below ``threshold`` never
    matched (ties go to the later track, then the later detection). ``tracks`` and
    ``dets`` are [N, 4] x, y, w, h boxes; returns ``(track index, detection index)``."""
    ti, di = _candidate_pairs(np.asarray(tracks, np.float64).reshape(-1, 4),
                              np.asarray(dets, np.float64).reshape(-1, 4))
    if len(ti) == 0:
        return []
    s = _iou_pairs(np.asarray(tracks, np.float64)[ti], np.asarray(dets, np.float64)[di])
    keep = s >= threshold
    ti, di, s = ti[keep], di[keep], s[keep]
    used_t, used_d, out = set(), set(), []
    for k in np.lexsort((-di, -ti, -s)):
        t, d = int(ti[k]), int(di[k])
        if t not in used_t and d not in used_d:
            used_t.add(t)
            used_d.add(d)
            out.append((t, d))
    return out


@dataclass
class Track:
    id: int
    box: tuple[int, int, int, int]
    history: deque = field(default_factory=deque)
    label: int = -1
    misses: int = 0
    hits: int = 0
    shown: bool = False
    confidence: float = 0.0

    def mean_probs(self) -> np.ndarray:
        return np.mean(np.stack(list(self.history)), axis=0)


class Tracker:
    """``update(detections) -> detections`` with smoothed labels and confidences.

    Detections must carry ``probs`` (``Recognizer.detect`` fills them); pass all of a
    frame's candidates (``min_confidence=0``): the tracker applies ``min_confidence`` to
    the smoothed confidence, so one blurry frame neither hides a digit nor flips it.
    """

    def __init__(self, window: int = 8, min_confidence: float = 0.5, iou_threshold: float = 0.3,
                 max_misses: int = 5, margin: float = 0.15, coast: int = 5, keep_ratio: float = 0.6) -> None:
        self.window = max(1, int(window))
        self.min_confidence = float(min_confidence)
        self.iou_threshold = float(iou_threshold)
        self.max_misses = int(max_misses)
        self.margin = float(margin)
        # a shown digit stays shown through `coast` frames without a detection, and while
        # its smoothed confidence stays above keep_ratio * min_confidence (hysteresis):
        # a one-frame miss or dip is not a change of evidence
        self.coast = int(coast)
        self.keep_ratio = float(keep_ratio)
        self.tracks: list[Track] = []
        self._next_id = 0

    def _match(self, dets: Sequence[Detection]) -> list[tuple[int, int]]:
        return match_boxes(np.array([t.box for t in self.tracks], np.float64).reshape(-1, 4),
                           np.array([d.box for d in dets], np.float64).reshape(-1, 4), self.iou_threshold)

    def update(self, detections: Sequence[Detection]) -> list[Detection]:
        matches = self._match(detections)
        matched_t = {ti for ti, _ in matches}
        track_of: dict[int, Track] = {}
        for ti, di in matches:
            t = self.tracks[ti]
            t.box, t.misses = detections[di].box, 0
            track_of[di] = t
        for ti, t in enumerate(self.tracks):
            if ti not in matched_t:
                t.misses += 1
        self.tracks = [t for t in self.tracks if t.misses <= self.max_misses]
        for di, d in enumerate(detections):
            if di not in track_of:
                t = Track(id=self._next_id, box=d.box, history=deque(maxlen=self.window))
                self._next_id += 1
                self.tracks.append(t)
                track_of[di] = t
        out: list[Detection] = []
        for di, d in enumerate(detections):
            t = track_of[di]
            if d.probs is None:
                out.append(d)
                continue
            t.history.append(np.asarray(d.probs, np.float64))
            t.hits += 1
            mean = t.mean_probs()
            best = int(mean[:10].argmax())
            if t.label < 0 or mean[best] > mean[t.label] + self.margin or mean[t.label] < 0.2:
                t.label = best
            t.confidence = float(mean[t.label])
            t.shown = t.confidence >= self.min_confidence * (self.keep_ratio if t.shown else 1.0)
            if t.shown:
                out.append(Detection(box=d.box, digit=t.label, confidence=t.confidence, probs=mean.astype(np.float32)))
        for t in self.tracks:
            if t.shown and 0 < t.misses <= self.coast:
                out.append(Detection(box=t.box, digit=t.label, confidence=t.confidence,
                                     probs=t.mean_probs().astype(np.float32)))
        return out


def detect_tracked(recognizer: "object", frame: np.ndarray, tracker: Tracker | None) -> list[Detection]:
    """One frame through the recognizer and, when given, the tracker (as the CLI does):
    the tracker sees every candidate and applies the confidence threshold after smoothing."""
    if tracker is None:
        return recognizer.detect(frame)
    return tracker.update(recognizer.detect(frame, min_confidence=0.0))
