"""Tests for training.synth (composed digits and marks) and training.negatives (the digit
network's "not a digit" bank), on synthetic digits: no MNIST needed, except where the
property is MNIST's own (the softness of its 20-px scans)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training import fields, synth
from training.negatives import make_negatives


def _bar_glyphs() -> tuple[np.ndarray, np.ndarray]:
    left = np.zeros((10, 6), np.uint8)
    left[:, 4:6] = 255  # a bar at columns 4-5
    right = np.zeros((10, 6), np.uint8)
    right[:, 0:2] = 255  # a bar at columns 0-1
    return left, right


def test_touching_offset_overlaps_strong_ink_by_the_asked_pixels() -> None:
    left, right = _bar_glyphs()
    assert synth.next_to(left, 0, right, 0, 0) == 6  # side by side, no overlap
    assert synth.next_to(left, 0, right, 0, 2) == 4  # the bars share 2 columns
    assert synth.next_to(left, 0, right, 0, -1) == 7  # a 1-px gap


def test_compose_puts_glyphs_on_one_baseline_and_reports_their_spans() -> None:
    rng = np.random.default_rng(0)
    left, right = _bar_glyphs()
    for _ in range(20):
        ink, spans = synth.compose([left, right], rng)
        assert ink.dtype == np.uint8 and len(spans) == 2 and ink.shape[0] <= 11
        assert all(x1 - x0 == 6 for x0, x1 in spans) and spans[0][0] == 0 and ink.shape[1] == spans[1][1]
        # the bars (columns 4-5 of the left glyph, 0-1 of the right) overlap by -2..4 px
        assert 2 <= spans[1][0] <= 8
    lo = spans[1][0]
    cut, moved = synth.cut(ink, spans, lo, None)
    cols = np.flatnonzero(ink[:, lo:].max(axis=0) > 20) + lo  # the ink right of the cut, trimmed
    assert np.array_equal(cut, ink[:, cols[0] : cols[-1] + 1]) and moved[1][0] == lo - cols[0]


def test_glyph_slants_and_trims_a_digit(synthetic_digits) -> None:
    images, _ = synthetic_digits
    rng = np.random.default_rng(1)
    g = synth.glyph(images[0], rng, 60.0, -0.3)
    assert g is not None and g.dtype == np.uint8
    assert 55 <= g.shape[0] <= 75 and g[0].any() and g[-1].any() and g[:, 0].any() and g[:, -1].any()
    assert synth.glyph(np.zeros((28, 28), np.uint8), rng, 60.0, 0.0) is None


def test_composed_pair_samples_are_consistent() -> None:
    import cv2

    rng = np.random.default_rng(0)
    images = np.zeros((10, 28, 28), np.uint8)
    for d in range(10):
        cv2.putText(images[d], str(d), (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    labels = np.arange(10)
    pairs = marks = 0
    for _ in range(100):
        s = synth.pair_sample(images, labels, rng)
        if s is None:
            continue
        field, a, b, is_pair, end, start, is_digits = s
        assert field.shape == (28, fields.PAIR_WIDTH) and field.dtype == np.uint8 and field.max() > 200
        if is_pair:
            pairs += 1
            assert 0 <= a <= 9 and 0 <= b <= 9 and is_digits == 1
            # the left digit ends right of where the right one starts, or just before
            assert 0.2 < end <= 1.0 and 0.0 <= start < 0.8 and start < end + 0.2
        else:
            assert (a, b, end, start) == (-1, -1, 0.0, 0.0)
            marks += 1 - is_digits
    assert 30 <= pairs <= 65 and 10 <= marks <= 35, (pairs, marks)


def test_composed_numbers_are_consistent(synthetic_digits) -> None:
    images, labels = synthetic_digits
    rng = np.random.default_rng(0)
    widths: dict[int, list[int]] = {}
    for _ in range(300):
        s = synth.number_sample(images, labels, rng)
        if s is None:
            continue
        field, digits = s
        assert field.dtype == np.uint8 and field.shape == (28, fields.NUMBER_WIDTH)
        assert 1 <= len(digits) <= synth.MAX_DIGITS and all(0 <= d <= 9 for d in digits)
        cols = np.flatnonzero(field.max(axis=0) > 60)
        widths.setdefault(len(digits), []).append(int(cols[-1] - cols[0] + 1))
    # every length is drawn, and more digits make a wider number
    assert sorted(widths) == [1, 2, 3, 4, 5]
    means = [np.mean(widths[n]) for n in sorted(widths)]
    assert all(a < b for a, b in zip(means, means[1:])), means


def test_make_pairs_and_numbers_are_arrays_of_one_row_per_sample(synthetic_digits) -> None:
    images, labels = synthetic_digits
    crops, left, right, is_pair, ends, is_digits = synth.make_pairs(images, labels, 50, seed=3)
    assert crops.shape == (50, 28, fields.PAIR_WIDTH) and crops.dtype == np.uint8
    assert left.shape == right.shape == is_pair.shape == is_digits.shape == (50,) and ends.shape == (50, 2)
    assert ((left >= 0) == (is_pair > 0.5)).all()
    again = synth.make_pairs(images, labels, 50, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((crops, left, right, is_pair, ends, is_digits), again))
    numbers, digits = synth.make_numbers(images, labels, 40, seed=3)
    assert numbers.shape == (40, 28, fields.NUMBER_WIDTH) and digits.shape == (40, synth.MAX_DIGITS)
    assert ((digits >= 0).sum(1) >= 1).all() and not np.array_equal(numbers, synth.make_numbers(images, labels, 40, 4)[0])


def _numbered_chunk(args: tuple[np.ndarray, np.ndarray, int, int]) -> tuple[np.ndarray]:
    _, _, n, seed = args
    return (np.random.default_rng(seed).integers(0, 1000, n),)


def test_composed_chunks_do_not_depend_on_the_worker_count() -> None:
    none = np.zeros(0)
    one = synth.compose_chunks(_numbered_chunk, none, none, 4100, seed=5, workers=1)
    two = synth.compose_chunks(_numbered_chunk, none, none, 4100, seed=5, workers=2)
    assert len(one[0]) == 4100 and np.array_equal(one[0], two[0])


def test_marks_are_as_soft_as_the_digits_they_are_told_from(mnist_dir) -> None:
    """The pair reader must tell letters from digits by shape, not by sharpness. MNIST's
    20-px digits scaled up are soft; marks drawn at 80 px and scaled down were crisp, and
    a reader trained on them passed camera-soft letters as digits. Measured: the median
    share of grey (edge) pixels in the ink is 0.69 for marks and 0.78 for digits (0.46
    for marks without the pass through MNIST's resolution)."""
    from training.data import load_mnist

    images, labels = (t.numpy() for t in load_mnist("test", mnist_dir))
    rng = np.random.default_rng(0)
    grey: dict[int, list[float]] = {0: [], 1: []}
    while min(len(v) for v in grey.values()) < 150:
        s = synth.pair_sample(images[:500], labels[:500], rng)
        if s is None:
            continue
        ink = s[0][s[0] > 25]
        grey[s[6]].append(float((ink < 230).mean()))
    marks, digits = np.median(grey[0]), np.median(grey[1])
    assert marks >= 0.8 * digits, f"marks' ink is crisper than the digits': {marks:.2f} grey against {digits:.2f}"


def test_printed_letters_render_in_every_bundled_font() -> None:
    """Each font the printed-letter generator names ships with matplotlib and draws ink;
    none is one of OpenCV's Hershey fonts, which the benchmark's letters use."""
    assert not any("hershey" in name.lower() for name in synth.PRINTED_FONTS)
    for name in synth.PRINTED_FONTS:
        bbox = synth.printed_font(name, 40).getbbox("nHk")
        assert bbox[2] - bbox[0] > 20 and bbox[3] - bbox[1] > 15, (name, bbox)
    rng = np.random.default_rng(1)
    marks = [synth.printed(rng) for _ in range(40)]
    assert all(m.dtype == np.float32 and m.max() > 0.9 and (m > 0.5).mean() > 0.02 for m in marks)
    # heavy and light: the stroke weight varies
    ink = sorted(float((m > 0.5).sum() / max(1, (m > 0.05).any(axis=1).sum()) ** 2) for m in marks)
    assert ink[-1] > 2 * ink[0]


@pytest.mark.parametrize("make", [synth.scribble, synth.dash, synth.letters])
def test_drawn_marks_are_ink_on_black(make) -> None:
    rng = np.random.default_rng(2)
    for _ in range(10):
        m = make(rng)
        assert m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1.0 and m.max() > 0.9
        assert 0.002 < (m > 0.5).mean() < 0.5  # strokes, not a blot


def test_negatives_look_like_mnist_crops(synthetic_digits) -> None:
    x = torch.from_numpy(synthetic_digits[0])
    neg = make_negatives(400, x, seed=3)
    assert neg.shape == (400, 28, 28) and neg.dtype == torch.uint8
    assert torch.equal(neg, make_negatives(400, x, seed=3))  # deterministic
    assert not torch.equal(neg, make_negatives(400, x, seed=4))
    a = neg.float() / 255
    # MNIST-style: ink peaks at white, background black, the ink box 20 px on its longer side
    assert float(a.amax(dim=(1, 2)).min()) > 0.9
    # centring by centre of mass may push a lopsided mark's box to the edge, as in MNIST; rarely
    edge = (a[:, :2, :].amax(dim=(1, 2)) > 0.05) | (a[:, -2:, :].amax(dim=(1, 2)) > 0.05)
    assert float(edge.float().mean()) < 0.1
    ys = (a > 0.1).any(dim=2)
    xs = (a > 0.1).any(dim=1)
    longer = torch.maximum(ys.sum(1), xs.sum(1)).float()
    assert 18 <= float(longer.median()) <= 22
    # centred by centre of mass, as MNIST is
    r = torch.arange(28).float()
    cy = (a.sum(2) * r).sum(1) / a.sum((1, 2))
    cx = (a.sum(1) * r).sum(1) / a.sum((1, 2))
    assert float((cy - 13.5).abs().mean()) < 1.5 and float((cx - 13.5).abs().mean()) < 1.5
