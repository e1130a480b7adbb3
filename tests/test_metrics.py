"""Detection-to-truth matching and counts, on hand-made boxes with known answers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from benchmarks.metrics import Counts, boxes_match, iou, match, score_frame, score_frames


def det(box, digit):
    return {"box": list(box), "digit": digit}


def tru(box, label):
    return {"box": list(box), "label": label}


@dataclass
class Det:  # detections may also be objects
    box: tuple[int, int, int, int]
    digit: int


TRUTHS = [tru((10, 10, 20, 30), 3), tru((50, 10, 20, 30), 1), tru((90, 10, 20, 30), 7)]


def test_iou_known_values():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0  # touching edges, no overlap
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0  # empty boxes do not divide by zero


def test_perfect():
    dets = [det(t["box"], t["label"]) for t in TRUTHS]
    c = score_frame(dets, TRUTHS)
    assert (c.true_digits, c.detections, c.matched, c.correct) == (3, 3, 3, 3)
    assert c.recall == c.precision == c.label_accuracy == c.read_correctly == 1.0
    r = match(dets, TRUTHS)
    assert r.pairs == [(0, 0), (1, 1), (2, 2)]
    assert r.unmatched_detections == [] and r.missed_truths == []


def test_one_missed():
    dets = [det(TRUTHS[0]["box"], 3), det(TRUTHS[2]["box"], 7)]
    r = match(dets, TRUTHS)
    assert r.missed_truths == [1]
    c = score_frame(dets, TRUTHS)
    assert (c.true_digits, c.detections, c.matched, c.correct) == (3, 2, 2, 2)
    assert c.recall == pytest.approx(2 / 3)
    assert c.precision == 1.0
    assert c.read_correctly == pytest.approx(2 / 3)


def test_one_extra():
    dets = [det(t["box"], t["label"]) for t in TRUTHS] + [det((200, 200, 20, 30), 4)]
    r = match(dets, TRUTHS)
    assert r.unmatched_detections == [3]
    c = score_frame(dets, TRUTHS)
    assert (c.matched, c.correct) == (3, 3)
    assert c.precision == pytest.approx(3 / 4)
    assert c.recall == 1.0


def test_one_wrong_label():
    dets = [det(TRUTHS[0]["box"], 3), det(TRUTHS[1]["box"], 7), det(TRUTHS[2]["box"], 7)]
    c = score_frame(dets, TRUTHS)
    assert (c.matched, c.correct) == (3, 2)
    assert c.recall == 1.0 and c.precision == 1.0
    assert c.label_accuracy == pytest.approx(2 / 3)
    assert c.read_correctly == pytest.approx(2 / 3)


def test_shifted_box_matched_by_mutual_centres():
    truth = [tru((0, 0, 20, 20), 5)]
    shifted = (7, 6, 20, 20)  # IoU = 182 / 618 = 0.2945, just below 0.3
    assert iou(shifted, truth[0]["box"]) == pytest.approx(182 / 618)
    assert iou(shifted, truth[0]["box"]) < 0.3
    r = match([det(shifted, 5)], truth)
    assert r.pairs == [(0, 0)]
    assert score_frame([det(shifted, 5)], truth).correct == 1


def test_far_shifted_box_not_matched():
    truth = [tru((0, 0, 20, 20), 5)]
    far = (15, 0, 20, 20)  # IoU 100 / 700; its centre (25, 10) is outside the truth
    r = match([det(far, 5)], truth)
    assert r.pairs == [] and r.unmatched_detections == [0] and r.missed_truths == [0]
    c = score_frame([det(far, 5)], truth)
    assert (c.matched, c.correct, c.recall, c.precision) == (0, 0, 0.0, 0.0)


def test_iou_alone_is_enough():
    # Tall detection over a short truth: IoU 1/3 but the detection's centre is outside.
    assert boxes_match((0, 0, 10, 30), (0, 0, 10, 10))
    # One centre inside the other but not the reverse, and low IoU: no match.
    assert not boxes_match((0, 0, 100, 100), (5, 5, 10, 10))


def test_one_to_one():
    truth = [tru((0, 0, 20, 30), 2)]
    dets = [det((1, 0, 20, 30), 2), det((0, 0, 20, 30), 2)]  # the second is the better one
    r = match(dets, truth)
    assert r.pairs == [(1, 0)]
    assert r.unmatched_detections == [0]
    c = score_frame(dets, truth)
    assert (c.true_digits, c.detections, c.matched, c.correct) == (1, 2, 1, 1)
    assert c.precision == 0.5


def test_greedy_prefers_higher_iou_pairs():
    truths = [tru((0, 0, 10, 10), 1), tru((4, 0, 10, 10), 2)]
    # Detection 0 matches both truths (IoU 0.54 and 0.82); detection 1 is exactly truth 0.
    dets = [det((3, 0, 10, 10), 2), det((0, 0, 10, 10), 1)]
    r = match(dets, truths)
    assert r.pairs == [(1, 0), (0, 1)]  # sorted by truth index
    assert score_frame(dets, truths).correct == 2


def test_objects_and_label_key_accepted():
    dets = [Det((10, 10, 20, 30), 3), {"box": [50, 10, 20, 30], "label": 1}]
    c = score_frame(dets, TRUTHS)
    assert (c.matched, c.correct) == (2, 2)


def test_empty_cases():
    c = score_frame([], [])
    assert (c.recall, c.precision, c.label_accuracy, c.read_correctly) == (1.0, 1.0, 1.0, 1.0)
    c = score_frame([], TRUTHS)
    assert c.recall == 0.0 and c.precision == 1.0 and c.read_correctly == 0.0
    c = score_frame([det((0, 0, 5, 5), 1)], [])
    assert c.precision == 0.0 and c.recall == 1.0


def test_counts_add_up():
    a = Counts(true_digits=3, detections=2, matched=2, correct=1)
    b = Counts(true_digits=1, detections=3, matched=1, correct=1)
    s = a + b
    assert (s.true_digits, s.detections, s.matched, s.correct) == (4, 5, 3, 2)
    assert (a.true_digits, b.true_digits) == (3, 1)  # + does not mutate
    assert sum([a, b]) == s
    t = Counts()
    t += a
    t.update(b)
    assert t == s
    assert s.recall == 0.75 and s.precision == 0.6
    assert s.label_accuracy == pytest.approx(2 / 3) and s.read_correctly == 0.5
    assert s.as_dict()["matched"] == 3


def test_score_frames_sums():
    frames = [([det(TRUTHS[0]["box"], 3)], TRUTHS), ([], TRUTHS[:1])]
    c = score_frames(frames)
    assert (c.true_digits, c.detections, c.matched, c.correct) == (4, 1, 1, 1)
