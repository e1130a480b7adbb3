"""Segmentation (ink map, binarization, line removal, blobs) on rendered frames with exact truth.

Every check compares ``realtime.segment`` output with the truth boxes of
``benchmarks.scenes`` (matched with ``benchmarks.metrics.match``), or with hand-made
inputs whose answer is known by construction.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmarks.metrics import iou, match
from benchmarks.scenes import SceneConfig, render_scene
from realtime.geometry import reading_rows
from realtime.imaging import ink_gray, to_gray
from realtime.segment import find_blobs, remove_lines, segment
from tests.shapes import ring

SEEDS = (0, 1, 2)


def _segment_and_match(frame, truths):
    cands = segment(frame).blobs
    return cands, match([{"box": c.box} for c in cands], truths)


# --------------------------------------------------------------------------- clean scenes


@pytest.mark.parametrize("seed", SEEDS)
def test_clean_scene_one_tight_candidate_per_digit(mnist_test, seed):
    frame, truths, _ = render_scene(seed, SceneConfig.clean(), mnist_test)
    assert len(truths) >= 10
    cands, res = _segment_and_match(frame, truths)
    missed = [truths[j].box for j in res.missed_truths]
    extra = [cands[i].box for i in res.unmatched_detections]
    assert not missed, f"seed {seed}: {len(missed)} of {len(truths)} digits not found: {missed}"
    assert len(cands) == len(truths), f"seed {seed}: {len(cands)} candidates for {len(truths)} digits; extra {extra}"
    ious = [iou(cands[i].box, truths[j].box) for i, j in res.pairs]
    tight = sum(v >= 0.5 for v in ious)
    assert tight >= 0.95 * len(truths), f"seed {seed}: only {tight}/{len(truths)} boxes with IoU >= 0.5 (min {min(ious):.2f})"
    # each candidate's mask is its box's size and holds ink reaching all four box edges
    for c in cands:
        x, y, w, h = c.box
        assert c.mask.shape == (h, w) and c.mask.dtype == bool
        assert c.mask[0].any() and c.mask[-1].any() and c.mask[:, 0].any() and c.mask[:, -1].any()


def test_clean_scenes_rarely_split_a_digit(mnist_test):
    """Over a dozen clean frames every digit is found and almost no digit is broken into
    two candidates (a detached stroke of an MNIST digit left as its own candidate)."""
    n_truth = n_extra = n_missed = 0
    for seed in range(12):
        frame, truths, _ = render_scene(seed, SceneConfig.clean(), mnist_test)
        cands, res = _segment_and_match(frame, truths)
        n_truth += len(truths)
        n_extra += len(res.unmatched_detections)
        n_missed += len(res.missed_truths)
    assert n_missed == 0, f"{n_missed}/{n_truth} digits not found"
    assert n_extra <= 0.02 * n_truth, f"{n_extra} extra candidates for {n_truth} digits"


# --------------------------------------------------------------------------- hard paper


def test_shadowed_sheet_still_finds_digits(mnist_test):
    n_truth = n_found = 0
    for seed in SEEDS:
        frame, truths, _ = render_scene(seed, SceneConfig.clean(shadow=1.0), mnist_test)
        _, res = _segment_and_match(frame, truths)
        n_truth += len(truths)
        n_found += len(res.pairs)
    assert n_found >= 0.95 * n_truth, f"shadow=1.0: found {n_found}/{n_truth} digits"


@pytest.mark.parametrize("ink", ["black", "pencil"])
@pytest.mark.parametrize("lines", ["ruled", "grid"])
def test_ruled_and_grid_lines_do_not_join_digits(mnist_test, lines, ink):
    """Digits on ruled / grid paper come out whole and without pieces of line. With black
    ink the printed lines stay below the ink threshold; faint pencil lowers the adaptive
    threshold until the lines binarize too, so there line removal has to do the work."""
    n_truth = n_found = 0
    too_big = []
    for seed in SEEDS:
        frame, truths, cfg = render_scene(seed, SceneConfig.clean(lines=lines, ink=ink, tilt=0.0), mnist_test)
        assert cfg.lines == lines
        cands, res = _segment_and_match(frame, truths)
        n_truth += len(truths)
        n_found += len(res.pairs)
        for i, j in res.pairs:
            (_, _, cw, ch), (_, _, tw, th) = cands[i].box, truths[j].box
            if cw > 1.25 * tw + 4 or ch > 1.25 * th + 4:
                too_big.append((seed, cands[i].box, truths[j].box))
        # nothing line-like survives as a candidate either
        W = frame.shape[1]
        assert all(c.box[2] < 0.25 * W for c in cands), f"{lines}/{ink} seed {seed}: a line-wide candidate"
    msg = (f"{lines}/{ink}: found {n_found}/{n_truth} digits; {len(too_big)} candidates much larger than "
           f"their digit (line pieces merged in), (seed, candidate, truth): {too_big}")
    assert n_found >= 0.95 * n_truth, msg
    assert not too_big, msg


@pytest.mark.parametrize("lines", ["ruled", "grid"])
def test_remove_lines_frees_a_digit_crossed_by_rules(lines):
    """Hand-made mask: a "0" written across 2-px rules. Without line removal the digit
    and the rules are one frame-wide component (no candidate); with it, the digit comes
    back whole, as one candidate with its own box."""
    H, W = 480, 640
    mask = np.zeros((H, W), np.uint8)
    for y in range(40, H, 60):
        mask[y:y + 2, :] = 255
    if lines == "grid":
        for x in range(30, W, 60):
            mask[:, x:x + 2] = 255
    zero = ring(66, 44, 5).astype(np.uint8) * 255
    x0, y0 = 305, 185  # crosses the rule at y=220 (and the grid line at x=330)
    mask[y0:y0 + zero.shape[0], x0:x0 + zero.shape[1]] |= zero
    want = (x0, y0, zero.shape[1], zero.shape[0])
    assert find_blobs(mask) == []  # the digit is lost in the rules
    cands = find_blobs(remove_lines(mask))
    near = [c.box for c in cands if iou(c.box, want) > 0.3]
    assert len(near) == 1, f"candidates {[c.box for c in cands]}, digit at {want}"
    assert iou(near[0], want) >= 0.9, f"digit box {near[0]} vs {want}"


@pytest.mark.parametrize("tilt", [0.0, 0.8])
def test_empty_desk_gives_no_candidates(mnist_test, tilt):
    for seed in SEEDS:
        frame, truths, _ = render_scene(seed, SceneConfig.clean(n_digits=0, desk=True, tilt=tilt), mnist_test)
        assert truths == []
        cands = segment(frame).blobs
        assert cands == [], f"seed {seed} tilt {tilt}: {len(cands)} candidates on an empty sheet: {[c.box for c in cands]}"


def test_specks_do_not_chain_two_rows_into_one_candidate():
    """A "0" above a "5" on the next row, and a speck between them (a grid crossing, a
    dot): the speck may join either digit, but the two digits stay separate candidates."""
    mask = np.zeros((240, 200), np.uint8)
    zero = ring(66, 47, 5).astype(np.uint8) * 255
    five = ring(39, 24, 4).astype(np.uint8) * 255
    mask[52:52 + zero.shape[0], 37:37 + zero.shape[1]] = zero
    mask[137:140, 38:41] = 255  # the speck, 19 px below the "0" and 4 px above the "5"
    mask[144:144 + five.shape[0], 38:38 + five.shape[1]] = five
    cands = find_blobs(mask)
    boxes = [c.box for c in cands]
    assert len(cands) == 2, f"expected the two digits apart, got {boxes}"
    assert (37, 52, zero.shape[1], zero.shape[0]) in boxes
    assert all(h <= 1.45 * zero.shape[0] for _, _, _, h in boxes)


def test_marker_one_is_kept_but_a_solid_blob_is_not():
    """A 1 drawn with a thick marker is a solid, slightly slanted bar (density ~0.85,
    up to about half as wide as tall); a filled square (a sticker, a shadowed hole) is
    solid and wide. The first is a candidate, the second is not."""
    mask = np.zeros((120, 200), np.uint8)
    bar = np.array([[40, 20], [56, 20], [57, 62], [41, 62]], np.int32)  # 18 x 43 px, density 0.87
    cv2.fillConvexPoly(mask, bar, 255)
    mask[30:70, 120:160] = 255
    boxes = [c.box for c in find_blobs(mask)]
    assert len(boxes) == 1, f"expected only the marker 1, got {boxes}"
    x, y, w, h = boxes[0]
    assert x == 40 and w / h > 0.35, boxes


# --------------------------------------------------------------------------- ink colour


def _contrast(gray: np.ndarray, ink_px: np.ndarray, paper_px: np.ndarray) -> float:
    """Ink darkness relative to the paper (1 = black), by medians over known pixels."""
    g = gray.astype(np.float64)
    return 1.0 - float(np.median(g[ink_px])) / float(np.median(g[paper_px]))


def test_ink_gray_makes_coloured_ink_dark(mnist_test):
    """Red and blue ink come out nearly as dark as black ink in ``ink_gray`` (luma makes
    red ink faint). The same seed gives the same layout for every ink colour, so the
    ink pixels are taken from the black-ink frame."""
    for seed in SEEDS:
        frames = {ink: render_scene(seed, SceneConfig.clean(ink=ink), mnist_test) for ink in ("black", "red", "blue")}
        black, truths, _ = frames["black"]
        luma_black = to_gray(black).astype(np.float64)
        boxes = np.zeros(luma_black.shape, bool)
        for x, y, w, h in (t.box for t in truths):
            boxes[max(0, y - 3): y + h + 3, max(0, x - 3): x + w + 3] = True
        paper_level = float(np.median(luma_black[~boxes]))
        ink_px = boxes & (luma_black < 0.5 * paper_level)  # the solid middle of strokes
        assert ink_px.sum() > 500
        c = {ink: (_contrast(ink_gray(f), ink_px, ~boxes), _contrast(to_gray(f), ink_px, ~boxes))
             for ink, (f, _, _) in frames.items()}
        msg = f"seed {seed}: contrast (ink_gray, luma) {c}"
        assert c["red"][0] > c["red"][1] + 0.05, msg  # the median channel beats luma on red ink
        assert c["red"][0] >= 0.85 * c["black"][0], msg
        assert c["blue"][0] >= 0.8 * c["black"][0], msg
        assert c["black"][0] > 0.5, msg


# --------------------------------------------------------------------------- reading order


def test_reading_rows_orders_rows_then_columns():
    # three rows written with a little drift; heights differ inside a row ("1" vs "0")
    row1 = [(300, 20, 20, 40), (40, 24, 25, 38), (120, 18, 12, 44), (200, 26, 30, 36)]
    row2 = [(60, 110, 26, 42), (10, 104, 24, 44), (400, 116, 22, 40)]
    row3 = [(250, 200, 30, 50), (90, 196, 28, 54)]
    boxes = row1 + row2 + row3
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(boxes))
    shuffled = [boxes[i] for i in perm]
    rows = reading_rows(shuffled)
    got = [[shuffled[i] for i in row] for row in rows]
    want = [sorted(r, key=lambda b: b[0]) for r in (row1, row2, row3)]
    assert got == want
    assert sorted(i for row in rows for i in row) == list(range(len(boxes)))
    assert reading_rows([]) == []


def test_a_desk_ring_around_the_sheet_does_not_swallow_big_digits(mnist_test):
    """With no sheet found, the desk around the paper binarizes into one ring whose box
    holds the whole sheet. Measured on rendered desk scenes: merged with that ring as a
    "fragment", every digit with a twentieth of its ink vanished (whole rows of 60-80 px
    digits). The big digits inside the ring must stay candidates."""
    images, _ = mnist_test
    mask = np.zeros((480, 640), np.uint8)
    # the desk's edge around the paper: a thin ring (wood grain binarizes sparse)
    cv2.rectangle(mask, (5, 5), (630, 470), 255, 3)
    boxes = []
    for k, x in enumerate((120, 260, 400)):
        digit = cv2.resize(images[k], (70, 70), interpolation=cv2.INTER_LINEAR)
        mask[60:130, x:x + 70] = np.maximum(mask[60:130, x:x + 70], (digit > 100).astype(np.uint8) * 255)
        ys, xs = np.nonzero(digit > 100)
        boxes.append((x + xs.min(), 60 + ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1))
    found = [c.box for c in find_blobs(mask)]
    for box in boxes:
        assert any(iou(box, f) > 0.8 for f in found), f"digit at {box} lost; candidates {found}"
