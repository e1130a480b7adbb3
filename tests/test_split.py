"""How blobs may be read (``realtime.split``): cut lattices, pieces of one digit, chains of
parts, and the choice among readings, on hand-made masks and readings."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.readers import DigitReadings, PairReadings
from realtime.segment import Blob
from realtime.split import (Options, Part, Plan, Reading, SplitConfig, best_chain, chains_by_reading, choose,
                            contested, cut_lattice, doubted, merge_pieces, options, piece_pairs, propose, refine)
from tests.shapes import disc, ring


def _two_blobs(left: np.ndarray, right: np.ndarray, gap: int) -> tuple[Blob, list[tuple[int, int, int, int]]]:
    """One connected mask: ``left`` and ``right`` side by side, bottoms aligned, joined by
    a thin 2-px bridge (``gap`` > 0) or overlapping by one column (``gap`` = 0).
    Returns the candidate and the two blobs' boxes in frame pixels."""
    h = max(left.shape[0], right.shape[0])
    w = left.shape[1] + gap + right.shape[1] - (1 if gap == 0 else 0)
    mask = np.zeros((h, w), bool)
    ly = h - left.shape[0]
    mask[ly:, : left.shape[1]] = left
    rx, ry = w - right.shape[1], h - right.shape[0]
    mask[ry:, rx:] |= right
    if gap:
        mid = h - min(left.shape[0], right.shape[0]) // 2
        mask[mid - 1: mid + 1, left.shape[1] - 2: rx + 2] = True
    assert cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] == 2  # background + one blob
    ox, oy = 100, 50
    want = [(ox, oy + ly, left.shape[1], left.shape[0]), (ox + rx, oy + ry, right.shape[1], right.shape[0])]
    return Blob(box=(ox, oy, w, h), mask=mask), want


def _assert_split_finds(cand: Blob, want: list[tuple[int, int, int, int]], tol: int = 3) -> None:
    """Among the lattice's segments, two meet at one cut point and are the two blobs."""
    n_points, segs = cut_lattice(cand, n_cuts=4)
    assert segs, "no segments in two side-by-side blobs"

    def close(a, b):
        return all(abs(p - q) <= tol for p, q in zip(a, b))

    lefts = [(j, part) for i, j, part in segs if i == 0 and close(part.box, want[0])]
    rights = {i: part for i, j, part in segs if j == n_points - 1 and close(part.box, want[1])}
    ok = [(left, rights[j]) for j, left in lefts if j in rights]
    assert ok, f"segments {[(i, j, p.box) for i, j, p in segs]} do not hold the blobs {want}"
    for part in ok[0]:
        x, y, pw, ph = part.box
        assert part.mask.shape == (ph, pw) and part.mask.any()


@pytest.mark.parametrize("shape", ["rings", "discs"])
def test_cut_lattice_recovers_two_bridged_blobs(shape):
    make = (lambda h, w: ring(h, w, 5)) if shape == "rings" else disc
    _assert_split_finds(*_two_blobs(make(60, 38), make(52, 34), gap=4))


def test_cut_lattice_recovers_two_touchingdiscs():
    _assert_split_finds(*_two_blobs(disc(50, 30), disc(56, 34), gap=0))


def test_cut_lattice_recovers_two_touching_rings():
    """'00': the least-ink column lies inside a loop, but the join is a local minimum too."""
    _assert_split_finds(*_two_blobs(ring(60, 38, 5), ring(56, 34, 5), gap=0))


def test_cut_lattice_segments_are_digit_sized_and_ordered():
    cand, _ = _two_blobs(ring(60, 38, 5), ring(56, 34, 5), gap=0)
    n_points, segs = cut_lattice(cand, n_cuts=6)
    h = cand.box[3]
    assert 3 <= n_points <= 8
    for i, j, part in segs:
        assert 0 <= i < j < n_points and (i, j) != (0, n_points - 1)  # the whole blob is not a segment
        assert cand.box[0] <= part.box[0] and part.box[0] + part.box[2] <= cand.box[0] + cand.box[2]
        assert part.box[3] >= 0.4 * h and part.box[2] <= 1.25 * h


def test_piece_pairs_proposes_pieces_of_one_digit_only():
    """Two bowls of a 3 with a pen skip between them, and the two sides of a broken 0,
    are proposed; digits of consecutive rows and neighbours in a number are not."""
    boxes = [
        (10, 10, 30, 28), (12, 42, 30, 28),  # a 3's bowls, a 4 px gap: one 60 px digit
        (100, 10, 14, 60), (118, 12, 14, 58),  # a 0's two sides
        (200, 10, 36, 60), (200, 110, 36, 60),  # one row's digit above the next row's
        (300, 10, 36, 60), (348, 10, 36, 60),  # neighbours in a number
    ]
    assert piece_pairs(boxes) == [(0, 1), (2, 3)]
    # the limits are the config's: a pen skip twice as wide is not proposed unless allowed
    wide_gap = [(10, 10, 30, 28), (12, 58, 30, 28)]
    assert piece_pairs(wide_gap) == []
    assert piece_pairs(wide_gap, SplitConfig(piece_max_gap=0.3, piece_min_share=0.35)) == [(0, 1)]
    merged = merge_pieces([Blob(box=(10, 10, 2, 2), mask=np.ones((2, 2), bool)),
                           Blob(box=(13, 14, 1, 1), mask=np.ones((1, 1), bool))])
    assert merged.box == (10, 10, 4, 5)
    assert merged.mask.sum() == 5 and merged.mask[4, 3] and not merged.mask[4, 0]


def test_best_chain_prefers_the_most_believable_reading():
    # points 0..3; segments (i, j, confidence)
    segs = [(0, 3, 0.3),  # the whole blob: unsure
            (0, 1, 0.95), (1, 3, 0.9),  # two confident digits
            (0, 2, 0.6), (2, 3, 0.99),  # a worse split
            (1, 2, 0.97)]  # a confident sliver: three parts must pay for the extra cut
    path, score = best_chain(4, segs, bonus=-0.1)
    assert path == [1, 2]
    assert score == pytest.approx(np.log(0.95) + np.log(0.9) - 0.2)
    assert best_chain(4, segs, min_conf=0.99)[0] == []  # no chain of confident parts
    assert best_chain(4, [(0, 1, 0.9)])[0] == []  # no chain reaches the end


def test_best_chain_counts_a_pair_reading_as_two_digits():
    # (0, 2) read as two touching digits at 0.8 beats two parts at 0.85 and 0.85 only
    # because each digit it stands for earns the bonus
    segs = [(0, 1, 0.85), (1, 2, 0.85), (0, 2, 0.8, 2)]
    assert best_chain(3, segs, bonus=0.1)[0] == [2]
    assert best_chain(3, segs, bonus=0.1)[1] == pytest.approx(np.log(0.8) + 0.2)
    assert best_chain(3, [(0, 1, 0.85), (1, 2, 0.85), (0, 2, 0.7, 2)], bonus=0.1)[0] == [0, 1]
    # max_parts counts digits, not stretches
    assert best_chain(3, [(0, 2, 0.9, 2)], max_parts=1)[0] == []


def test_chains_by_reading_keeps_the_best_chain_per_reading() -> None:
    # points 0..3; single-digit segments and one pair stretch 0-2
    segs = [(0, 1, 0.9), (1, 2, 0.8), (2, 3, 0.9), (0, 2, 0.5), (1, 3, 0.3), (0, 2, 0.6, 2), (0, 3, 0.2)]
    spelled = ["1", "7", "4", "9", "1", "17", "8"]
    found = chains_by_reading(4, segs, spelled, min_conf=0.1, bonus=0.1)
    assert set(found) == {"174", "94", "11", "8"}
    # "174" is spelled two ways: 1|7|4 (0.9*0.8*0.9) and 17|4 (0.6*0.9, two bonuses)
    path, score = found["174"]
    assert path == [0, 1, 2]
    assert score == pytest.approx(np.log(0.9 * 0.8 * 0.9) + 0.3)
    best = max(found.values(), key=lambda v: v[1])
    assert best == best_chain(4, segs, min_conf=0.1, bonus=0.1)
    assert "8" not in chains_by_reading(4, segs, spelled, min_conf=0.25, bonus=0.1)


# --------------------------------------------------------------------------- options and choice


def _bar(x: int, y: int, w: int, h: int) -> Blob:
    return Blob(box=(x, y, w, h), mask=np.ones((h, w), bool))


def _readings(rows: list[tuple[int, float]], classes: int = 11) -> DigitReadings:
    """Digit readings with crop k read as digit rows[k][0] at confidence rows[k][1] (the
    rest spread over the other classes)."""
    probs = np.full((len(rows), classes), 0.0, np.float32)
    for k, (d, p) in enumerate(rows):
        probs[k, :] = (1 - p) / (classes - 1)
        probs[k, d] = p
    return DigitReadings(probs)


def _two_bowls() -> tuple[Blob, Blob]:
    """A 3's two bowls with a pen skip between them: two stacked blobs."""
    return _bar(10, 10, 20, 18), _bar(11, 31, 20, 18)


def test_two_pieces_are_read_as_one_digit_only_when_that_reads_better():
    top, bottom = _two_bowls()
    plan = propose([top, bottom])
    assert [(m.members, m.crop) for m in plan.merges] == [((0, 1), 2)]
    assert plan.crops[2].box == (10, 10, 21, 39)
    # the pieces read as weak 7s, their union as a sure 3: one digit, the 3
    digits = _readings([(7, 0.3), (7, 0.35), (3, 0.95)])
    chosen = choose(plan, options(plan, digits, PairReadings.empty()), digits, PairReadings.empty())
    assert [(c.box, int(p.argmax())) for c, p in chosen] == [((10, 10, 21, 39), 3)]
    # the pieces read as sure digits on their own: two digits
    digits = _readings([(7, 0.97), (1, 0.96), (3, 0.6)])
    chosen = choose(plan, options(plan, digits, PairReadings.empty()), digits, PairReadings.empty())
    assert [int(p.argmax()) for _, p in chosen] == [7, 1]
    # a union read as "not a digit" never joins them
    digits = _readings([(7, 0.3), (7, 0.35), (10, 0.99)])
    chosen = choose(plan, options(plan, digits, PairReadings.empty()), digits, PairReadings.empty())
    assert len(chosen) == 2


def test_a_wide_blob_unsure_whole_is_split_at_its_valley():
    """Two bars joined by a thin bridge, read whole as an unsure digit: the lattice's
    stretches, read as sure 1s, win."""
    mask = np.zeros((40, 44), bool)
    mask[:, 2:8] = True
    mask[:, 34:40] = True
    mask[20:22, 8:34] = True
    blob = Blob(box=(100, 50, 44, 40), mask=mask)
    plan = propose([blob])
    whole = _readings([(4, 0.4)])
    plan = refine(plan, whole, pairs=False)
    assert 0 in plan.lattices and len(plan.crops) > 1
    edges = plan.lattices[0].edges
    # every stretch read as a sure 1: the best chain is the two bars
    digits = whole.extend(_readings([(1, 0.97)] * len(edges)))
    opts = options(plan, digits, PairReadings.empty())
    chosen = choose(plan, opts, digits, PairReadings.empty())
    assert [int(p.argmax()) for _, p in chosen] == [1, 1]
    assert chosen[0][0].box[0] == 102 and chosen[1][0].box[0] + chosen[1][0].box[2] == 140
    # read whole with confidence, the same blob gets no lattice at all
    sure = refine(propose([blob]), _readings([(4, 0.95)]), SplitConfig(whole_max_aspect=1.7), pairs=False)
    assert sure.lattices == {}


def test_a_blob_the_pair_reader_calls_no_digits_is_dropped_or_read_whole():
    blob = _bar(0, 0, 40, 30)
    plan = refine(propose([blob]), _readings([(4, 0.5)]), pairs=True)
    assert 0 in plan.pair_whole and plan.pair_crops[plan.pair_whole[0]] is blob
    n = len(plan.pair_crops)
    logits = np.zeros((n, 24))
    logits[:, 23] = -8  # "no digits at all"
    pairs = PairReadings.from_logits(logits)
    assert doubted(plan, pairs, 0.05) == {0}
    digits = _readings([(4, 0.5)] + [(1, 0.9)] * (len(plan.crops) - 1))
    opts = options(plan, digits, pairs, unsplit=doubted(plan, pairs, 0.7))
    assert opts[0].splits == ()  # not split
    assert choose(plan, opts, digits, pairs, dropped={0}) == []


def test_contested_blobs_are_those_with_close_readings():
    close = Options(("7", -0.5), (Reading("11", (Part(1), Part(2)), -0.8),))
    clear = Options(("7", -0.1), (Reading("11", (Part(1), Part(2)), -6.0),))
    unspelled = Options(("7", -0.5), (Reading(None, (Part(1),), -0.6),))
    assert contested({0: close, 1: clear, 2: unspelled}, SplitConfig(seq_contest=3.0)) == [0]
    assert close.texts() == {"7", "11"}
    # the number reader's likelihoods decide between close readings
    plan = Plan(blobs=[_bar(0, 0, 30, 30)], crops=[_bar(0, 0, 30, 30), _bar(0, 0, 14, 30), _bar(16, 0, 14, 30)])
    digits = _readings([(7, 0.6), (1, 0.8), (1, 0.8)])
    likes = {0: {"7": -9.0, "11": -0.1}}
    chosen = choose(plan, {0: close}, digits, PairReadings.empty(), likes=likes)
    assert [int(p.argmax()) for _, p in chosen] == [1, 1]
    chosen = choose(plan, {0: close}, digits, PairReadings.empty(), likes={0: {"7": -0.1, "11": -9.0}})
    assert [int(p.argmax()) for _, p in chosen] == [7]


def test_a_pen_skip_is_bridged_and_its_pieces_read_as_one_digit():
    """A stroke cut by a pen skip: two pieces 3 px apart. Their union has the gap inked
    over (only between the pieces), and three slices, none tall enough to be a digit,
    are proposed as one union."""
    ink = np.zeros((60, 40), np.uint8)
    ink[5:28, 18:23] = 255
    ink[31:55, 18:23] = 255
    top = Blob(box=(18, 5, 5, 23), mask=np.ones((23, 5), bool))
    bottom = Blob(box=(18, 31, 5, 24), mask=np.ones((24, 5), bool))
    joined = merge_pieces([top, bottom], ink, bridge=0.12)
    assert joined.box == (18, 5, 5, 50) and joined.patch is not None
    assert (joined.patch[23:26] > 0).all() and joined.mask[23:26].all()  # the skip, inked over
    assert merge_pieces([top, bottom]).patch is None  # no bridging without the ink map
    slices = [Blob(box=(18, y, 5, 14), mask=np.ones((14, 5), bool)) for y in (5, 22, 39)]
    plan = propose([], pieces=slices, ink=ink, min_height=30)
    assert ((0, 1, 2) in [m.members for m in plan.merges])
    # read as a sure 1, the union of pieces alone is a digit; the pieces are never read alone
    digits = _readings([(1, 0.99)] * len(plan.crops))
    chosen = choose(plan, options(plan, digits, PairReadings.empty()), digits, PairReadings.empty())
    assert [(c.box, int(p.argmax())) for c, p in chosen] == [((18, 5, 5, 48), 1)]
