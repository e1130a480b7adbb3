"""Box arithmetic shared by the stages: reading order, unions, overlaps.

Boxes are ``(x, y, w, h)`` in pixels. Pure functions on plain values.
"""

from __future__ import annotations

from typing import Sequence

Box = tuple[int, int, int, int]


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
