"""Group digit detections into numbers, in reading order.

Rows run top to bottom and digits left to right inside a row; two neighbours in a row
belong to the same number when the gap between them is smaller than a digit's nominal
width and their heights are alike. A digit on its own is a one-digit number.
"""

from __future__ import annotations

from typing import Any, Sequence

from realtime.geometry import reading_rows

# A handwritten digit is roughly 0.6-0.7 times as wide as it is tall; its nominal width
# is what "a gap larger than a digit" is measured against (a "1" is far narrower).
NOMINAL_WIDTH = 0.65
MAX_HEIGHT_RATIO = 1.8


def group_numbers(detections: Sequence[Any], gap_factor: float = 1.0) -> list[dict[str, Any]]:
    """``[{"value": "4071", "box": [x, y, w, h], "digits": [indices]}]`` in reading order.

    ``detections`` need ``box`` (x, y, w, h) and ``digit``; indices refer to that list.
    """
    boxes = [tuple(float(v) for v in d.box) for d in detections]
    numbers: list[dict[str, Any]] = []
    for row in reading_rows(boxes):
        current = [row[0]]
        for prev, nxt in zip(row, row[1:]):
            px, py, pw, ph = boxes[prev]
            nx, ny, nw, nh = boxes[nxt]
            gap = nx - (px + pw)
            nominal = NOMINAL_WIDTH * max(ph, nh)
            alike = max(ph, nh) <= MAX_HEIGHT_RATIO * min(ph, nh)
            if gap <= gap_factor * nominal and alike:
                current.append(nxt)
            else:
                numbers.append(_number(current, detections, boxes))
                current = [nxt]
        numbers.append(_number(current, detections, boxes))
    return numbers


def _number(idx: list[int], detections: Sequence[Any], boxes: list[tuple[float, ...]]) -> dict[str, Any]:
    x0 = min(boxes[i][0] for i in idx)
    y0 = min(boxes[i][1] for i in idx)
    x1 = max(boxes[i][0] + boxes[i][2] for i in idx)
    y1 = max(boxes[i][1] + boxes[i][3] for i in idx)
    return {
        "value": "".join(str(int(detections[i].digit)) for i in idx),
        "box": [int(x0), int(y0), int(round(x1 - x0)), int(round(y1 - y0))],
        "digits": list(idx),
    }
