"""Box arithmetic shared by the stages: reading order, unions, overlaps.

Boxes are ``(x, y, w, h)`` in pixels. Pure functions on plain values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

Box = tuple[int, int, int, int]
# up to this many boxes every pair is tested; beyond it only those near each other in x
DENSE_PAIRS = 300


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


def reading_order(boxes: Sequence[Sequence[float]]) -> list[int]:
    """The indices of ``boxes`` in reading order (:func:`reading_rows`, flattened)."""
    return [i for row in reading_rows(boxes) for i in row]


def union(boxes: Sequence[Sequence[float]]) -> Box:
    """The smallest box holding all of ``boxes``."""
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return int(x0), int(y0), int(round(x1 - x0)), int(round(y1 - y0))


def candidate_pairs(x0: np.ndarray, x1: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)``, i < j, of intervals ``[x0, x1)`` (each grown by ``reach``) that
    overlap: every pair when there are at most ``DENSE_PAIRS`` (so a pair test need not
    bound its reach), else found by sorting on ``x0`` (a page of print has thousands of
    marks; testing every pair of them cost more than the rest of the frame)."""
    n = len(x0)
    if n <= DENSE_PAIRS:
        ii, jj = np.triu_indices(n, 1)
        return ii, jj
    order = np.argsort(x0, kind="stable")
    xs = np.asarray(x0, np.float64)[order]
    ends = np.searchsorted(xs, np.asarray(x1, np.float64)[order] + 2 * reach, side="right")
    counts = np.maximum(ends - np.arange(n) - 1, 0)
    first = np.repeat(np.arange(n), counts)
    offset = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    a, b = order[first], order[first + 1 + offset]
    return np.minimum(a, b), np.maximum(a, b)
