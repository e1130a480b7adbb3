"""The live view's stateful parts: the tracker (label stability on a steady rendered clip,
and its rules on synthetic detections) and number grouping (rendered numbers with
known values, and hand-made layouts)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from benchmarks.metrics import match
from benchmarks.scenes import SceneConfig, render_frames, render_scene
from realtime.numbers import group_numbers
from realtime.recognizer import Detection
from realtime.tracker import Tracker
from tests.live_fixtures import *  # noqa: F401,F403  (fixtures: mnist_test, recognizer)

FPS = 30


# --------------------------------------------------------------------------- steady clip


def _label_changes(per_frame: list[tuple[list, list]], warm: int) -> tuple[int, int]:
    """``(label changes, digit-frames)`` after ``warm`` frames. Each truth digit's label is
    the digit of the detection matched to it that frame, or -1 when none: a digit that
    vanishes and comes back flickers as much as one that changes its reading."""
    last: dict[int, int] = {}
    changes = present = 0
    for i, (dets, truths) in enumerate(per_frame):
        res = match(dets, truths)
        seen = {j: int(dets[d].digit) for d, j in res.pairs}
        for j in range(len(truths)):
            label = seen.get(j, -1)
            if i >= warm:
                present += 1
                if j in last and last[j] != label:
                    changes += 1
            last[j] = label
    return changes, present


def test_tracker_steadies_labels_on_a_steady_clip(recognizer, mnist_test):
    """Fixed camera, 90 frames at 30 fps (only sensor noise and JPEG change), on three
    sheets with random paper/ink/light: after the first second, fewer than 1 label change
    per 100 frames per digit with the tracker, and no worse than frame by frame."""
    tracked, untracked = [], []
    for seed in (0, 1, 2):
        tracker = Tracker(min_confidence=recognizer.min_confidence)
        for frame, truths in render_frames(seed, 90, SceneConfig(tilt=0.3, desk=False), motion="steady",
                                           fps=FPS, digits=mnist_test):
            dets = recognizer.detect(frame, min_confidence=0.0)
            # untracked: exactly what recognizer.detect(frame) returns
            untracked.append(([d for d in dets if d.confidence >= recognizer.min_confidence], truths))
            tracked.append((tracker.update(dets), truths))
    warm = FPS  # per clip; clips are concatenated, so count per clip
    t_changes = t_present = u_changes = u_present = 0
    for k in range(3):
        c, p = _label_changes(tracked[90 * k: 90 * (k + 1)], warm)
        t_changes, t_present = t_changes + c, t_present + p
        c, p = _label_changes(untracked[90 * k: 90 * (k + 1)], warm)
        u_changes, u_present = u_changes + c, u_present + p
    assert t_present > 1000
    rate_t, rate_u = 100.0 * t_changes / t_present, 100.0 * u_changes / u_present
    msg = (f"label changes per 100 frames per digit: tracked {rate_t:.2f} ({t_changes} in {t_present} digit-frames), "
           f"untracked {rate_u:.2f} ({u_changes} in {u_present})")
    print(msg)
    assert rate_t < 1.0, msg
    assert rate_t <= rate_u, msg


# --------------------------------------------------------------------------- tracker rules


def _det(digit: int, box=(100, 100, 30, 45), p: float = 0.95) -> Detection:
    probs = np.full(10, (1.0 - p) / 9, np.float32)
    probs[digit] = p
    return Detection(box=box, digit=digit, confidence=p, probs=probs)


def _jitter(box, i):
    x, y, w, h = box
    return (x + (i % 3) - 1, y + (i % 2), w, h)  # a pixel of jitter, as a live camera gives


def test_one_frame_glitch_does_not_flip_the_label():
    tr = Tracker()
    for i in range(8):
        out = tr.update([_det(3, _jitter((100, 100, 30, 45), i))])
        assert [d.digit for d in out] == [3]
    out = tr.update([_det(8, (101, 100, 30, 45))])
    assert [d.digit for d in out] == [3], "one frame of '8' flipped a steady '3'"
    out = tr.update([_det(3)])
    assert [d.digit for d in out] == [3]


def test_sustained_new_evidence_flips_the_label():
    tr = Tracker()
    for i in range(8):
        tr.update([_det(3, _jitter((100, 100, 30, 45), i))])
    labels = []
    for i in range(10):
        out = tr.update([_det(8, _jitter((100, 100, 30, 45), i))])
        labels.append(out[0].digit if out else None)  # hidden while the evidence is split
    assert labels[0] == 3, f"flipped on the first frame of new evidence: {labels}"
    assert labels[-1] == 8, f"10 frames of '8' did not flip the label: {labels}"
    shown = [d for d in labels if d is not None]
    assert shown == sorted(shown, key=lambda d: d == 8), f"the label went back and forth: {labels}"
    assert len(tr.tracks) == 1


def test_track_dropped_after_max_misses():
    tr = Tracker(max_misses=5)
    for _ in range(8):
        tr.update([_det(3)])
    for _ in range(5):  # gone for max_misses frames: the track waits, still shown (coasting)
        out = tr.update([])
        assert [(d.digit, d.box) for d in out] == [(3, (100, 100, 30, 45))]
    assert len(tr.tracks) == 1
    # coming back within max_misses keeps the history: one frame of '8' does not flip it
    assert tr.update([_det(8)])[0].digit == 3
    for i in range(6):  # gone for more than max_misses frames: shown while coasting, then dropped
        out = tr.update([])
        assert len(out) == (1 if i < tr.coast else 0)
    assert tr.tracks == []
    # a digit appearing there later starts fresh: its own reading, no old history
    out = tr.update([_det(8)])
    assert [d.digit for d in out] == [8]
    assert len(tr.tracks) == 1 and tr.tracks[0].hits == 1


def test_two_digits_keep_separate_tracks():
    tr = Tracker()
    a, b = (50, 100, 30, 45), (300, 220, 28, 44)
    for i in range(12):
        out = tr.update([_det(1, _jitter(a, i)), _det(7, _jitter(b, i + 1))])
        assert [d.digit for d in out] == [1, 7]
        assert out[0].box == _jitter(a, i) and out[1].box == _jitter(b, i + 1)
    assert len(tr.tracks) == 2
    assert {t.label for t in tr.tracks} == {1, 7}
    assert len({t.id for t in tr.tracks}) == 2
    assert all(t.hits == 12 for t in tr.tracks)
    # order of detections in a frame does not mix the tracks up
    out = tr.update([_det(7, b), _det(1, a)])
    assert [d.digit for d in out] == [7, 1]


def test_low_smoothed_confidence_is_hidden():
    tr = Tracker(min_confidence=0.5)
    assert tr.update([_det(4, p=0.3)]) == []
    assert len(tr.tracks) == 1  # tracked, just not shown


# --------------------------------------------------------------------------- numbers


def test_numbers_on_rendered_sheets(recognizer, mnist_test):
    """Numbers written as groups of digits: the grouped detections give each number's
    value (counted over numbers whose every digit was read right, so this measures the
    grouping, not the classifier)."""
    considered = right = all_numbers = 0
    wrong = []
    for seed in range(6):
        frame, truths, _ = render_scene(seed, SceneConfig.clean(group_prob=1.0), mnist_test)
        dets = recognizer.detect(frame)
        res = match(dets, truths)
        det_of = {j: i for i, j in res.pairs}
        numbers = group_numbers(dets)
        by_id: dict[int, list[int]] = defaultdict(list)
        for j, t in enumerate(truths):
            by_id[t.number_id].append(j)
        for nid, js in by_id.items():
            all_numbers += 1
            if not all(j in det_of and dets[det_of[j]].digit == truths[j].label for j in js):
                continue
            considered += 1
            js.sort(key=lambda j: truths[j].box[0])  # one number is one row: left to right
            value = "".join(str(truths[j].label) for j in js)
            want_idx = sorted(det_of[j] for j in js)
            if any(n["value"] == value and sorted(n["digits"]) == want_idx for n in numbers):
                right += 1
            else:
                wrong.append((seed, value, [n["value"] for n in numbers if set(n["digits"]) & set(want_idx)]))
    assert considered >= 0.7 * all_numbers, f"only {considered}/{all_numbers} numbers fully read"
    assert right >= 0.9 * considered, f"{right}/{considered} numbers grouped right; wrong (seed, truth, got): {wrong}"


class _D:
    def __init__(self, digit, box):
        self.digit, self.box = digit, box


def test_gap_wider_than_a_digit_separates_numbers():
    h = 40
    dets = [_D(1, (10, 10, 14, h)), _D(2, (30, 10, 24, h)), _D(3, (54 + 40, 10, 24, h))]  # gap 40 > 0.65 * 40
    nums = group_numbers(dets)
    assert [n["value"] for n in nums] == ["12", "3"]
    assert nums[0]["digits"] == [0, 1] and nums[1]["digits"] == [2]
    assert nums[0]["box"] == [10, 10, 44, h]


def test_rows_give_separate_numbers_in_reading_order():
    row1 = [_D(4, (20, 10, 22, 40)), _D(5, (46, 12, 22, 40)), _D(9, (200, 8, 22, 40))]
    row2 = [_D(6, (25, 90, 22, 40)), _D(0, (50, 92, 22, 40))]
    dets = [row2[1], row1[2], row1[0], row2[0], row1[1]]  # any order in
    nums = group_numbers(dets)
    assert [n["value"] for n in nums] == ["45", "9", "60"]
    for n in nums:  # indices point into the list given
        assert "".join(str(dets[i].digit) for i in n["digits"]) == n["value"]
    assert sorted(i for n in nums for i in n["digits"]) == list(range(len(dets)))
    assert group_numbers([]) == []


# --------------------------------------------------------------------------- dense frames


def _page(n: int, seed: int) -> list[Detection]:
    """``n`` digit detections in rows on a page, a pixel of jitter per frame (``seed``)."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    out = []
    for i in range(n):
        r, c = divmod(i, side)
        box = (c * 22 + int(rng.integers(0, 2)), r * 34 + int(rng.integers(0, 2)), 15, 26)
        out.append(_det(i % 10, box, p=0.9))
    return out


def _brute_force_matches(tracks, dets, threshold):
    """Every track against every detection, greedy by IoU (the tracker's rule, written plainly)."""
    def iou(a, b):
        ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
        iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
        union = a[2] * a[3] + b[2] * b[3] - ix * iy
        return ix * iy / union if union > 0 else 0.0

    pairs = sorted(((iou(t, d), ti, di) for ti, t in enumerate(tracks) for di, d in enumerate(dets)
                    if iou(t, d) >= threshold), reverse=True)
    used_t, used_d, out = set(), set(), []
    for _, ti, di in pairs:
        if ti not in used_t and di not in used_d:
            used_t.add(ti)
            used_d.add(di)
            out.append((ti, di))
    return out


def test_box_matching_equals_every_pair_compared():
    from realtime.tracker import match_boxes

    rng = np.random.default_rng(4)
    for trial in range(30):
        n_t, n_d = int(rng.integers(0, 40)), int(rng.integers(0, 40))
        def boxes(n):
            xy = rng.integers(0, 200, (n, 2))
            wh = rng.integers(1, 60, (n, 2))
            return [tuple(int(v) for v in row) for row in np.hstack([xy, wh])]
        tracks, dets = boxes(n_t), boxes(n_d)
        got = match_boxes(np.array(tracks).reshape(-1, 4), np.array(dets).reshape(-1, 4), 0.3)
        assert sorted(got) == sorted(_brute_force_matches(tracks, dets, 0.3)), trial


def test_tracker_cost_grows_linearly_on_dense_frames():
    """A dense page (a 1080p sheet of printed digits gives ~2000 boxes): four times the
    digits may cost about four times as long, not sixteen (every track against every
    detection). Medians of interleaved rounds, as a ratio, so a slow machine passes too."""
    import time

    def cost(n: int) -> float:
        tr = Tracker()
        tr.update(_page(n, 0))
        frames = [_page(n, k) for k in range(1, 4)]
        t = time.perf_counter()
        for f in frames:
            out = tr.update(f)
        elapsed = (time.perf_counter() - t) / len(frames)
        assert len(out) == n and len(tr.tracks) == n, "every digit keeps its one track"
        return elapsed

    small, large = [], []
    for _ in range(3):
        small.append(cost(300))
        large.append(cost(1200))
    ratio = float(np.median(large) / np.median(small))
    print(f"tracker update: {1000 * np.median(small):.1f} ms for 300 digits, "
          f"{1000 * np.median(large):.1f} ms for 1200 (ratio {ratio:.1f}; linear 4, quadratic 16)")
    assert ratio < 8.0, f"4x the digits cost {ratio:.1f}x as long: matching is not bounded"


# --------------------------------------------------------------------------- labels


def _overlaps(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _check_layout(lay, shape) -> None:
    h, w = shape[:2]
    rects = [lab.rect for lab in lay.labels]
    for i, r in enumerate(rects):
        assert r[0] >= 0 and r[1] >= 0 and r[0] + r[2] <= w and r[1] + r[3] <= h, f"label {r} leaves the frame"
        if lay.status is not None:
            assert not _overlaps(r, lay.status), f"label {lay.labels[i].text!r} {r} under the status bar"
        for j in range(i):
            assert not _overlaps(r, rects[j]), \
                f"labels {lay.labels[j].text!r} {rects[j]} and {lay.labels[i].text!r} {r} overlap"


def test_labels_never_collide_on_touching_digits(recognizer, mnist_test):
    """Touching digits in numbers (the case that drew "2 96(9%"), on a webcam view and on
    a portrait sheet: every label inside the frame, none over another or the status bar,
    every digit labelled (one may give way), text sized to the frame (at least 1/45 of its short side)."""
    from realtime.overlay import layout, status_text

    scenes = [(1, SceneConfig(width=640, height=480, n_digits=40, group_prob=1.0, touching_prob=0.6,
                              digit_px=(24, 50))),
              (2, SceneConfig(width=410, height=594, n_digits=30, group_prob=0.8, touching_prob=0.5,
                              digit_px=(30, 60)))]
    for seed, cfg in scenes:
        frame, _, _ = render_scene(seed, cfg, mnist_test)
        dets = recognizer.detect(frame)
        assert len(dets) >= 20
        lay = layout(frame.shape, dets, group_numbers(dets), status_text(180.0, 5.5, len(dets), latency_ms=12))
        _check_layout(lay, frame.shape)
        digit_labels = [lab for lab in lay.labels if lab.kind == "digit"]
        labelled = {lab.index for lab in digit_labels}
        assert len(labelled) == len(digit_labels) and len(labelled) >= len(dets) - 1, \
            f"{len(dets) - len(labelled)} of {len(dets)} digits lost their labels"
        for lab in digit_labels:
            assert lab.text.split()[0] == str(dets[lab.index].digit)
            assert lab.rect[3] >= min(frame.shape[:2]) / 45, f"{lab.rect[3]} px label on a {frame.shape[:2]} frame"


def test_crowded_labels_lose_the_percentage_then_shrink():
    """A 14x9 grid of boxes a few pixels apart: no place for full labels, so they go
    without the % and smaller, and still never overlap."""
    from realtime.overlay import label_scale, layout, status_text

    dets = [_det((14 * r + c) % 10, (4 + 22 * c, 30 + 23 * r, 18, 20)) for r in range(9) for c in range(14)]
    lay = layout((240, 320, 3), dets, [], status_text(30.0, 20.0, len(dets)))
    _check_layout(lay, (240, 320))
    texts = [lab.text for lab in lay.labels]
    assert any("%" not in t for t in texts) and len(texts) >= 0.5 * len(dets), (len(texts), lay.dropped)
    full = label_scale((240, 320), [d.box for d in dets])
    assert min(lab.scale for lab in lay.labels) < full
    # with room to spare, a label keeps its percentage and full size
    alone = layout((240, 320, 3), [_det(4, (150, 120, 18, 20))], [], None)
    assert [lab.text for lab in alone.labels] == ["4 95%"] and alone.labels[0].scale == pytest.approx(
        label_scale((240, 320), [(150, 120, 18, 20)]))


def test_draw_frame_draws_labels_over_number_boxes():
    """A number's box is drawn first and its digits' labels over it: the label's
    background is unbroken where the box's top edge runs under it."""
    from realtime.overlay import draw_frame, layout

    frame = np.full((240, 320, 3), 255, np.uint8)
    dets = [_det(1, (100, 100, 18, 30)), _det(2, (120, 100, 18, 30))]
    nums = [{"value": "12", "box": [100, 100, 38, 30], "digits": [0, 1]}]
    out = draw_frame(frame, dets, nums)
    for lab in layout(frame.shape, dets, nums).labels:
        x, y, w, h = lab.rect
        patch = out[y:y + h, x:x + w].reshape(-1, 3)
        background = np.array(lab.colour, np.uint8)
        assert not np.any(np.all(patch == np.array((255, 120, 0), np.uint8), axis=1)), \
            f"the number's box cuts through label {lab.text!r}"
        assert np.mean(np.all(patch == background, axis=1)) > 0.4
