"""Digits redrawn along their strokes: thinning, drawing at a pen width, skips, added strokes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmarks.handwriting import Pen, continental, draw, pen_digit, skeleton, thin


def test_thinning_known_shapes():
    bar = np.zeros((20, 40), bool)
    bar[5:12, 3:37] = True
    sk = thin(bar)
    assert set(np.nonzero(sk.any(axis=1))[0]) == {8}  # the bar's centre row
    assert 25 <= sk.sum() <= 34
    ring = np.zeros((60, 60), np.uint8)
    cv2.circle(ring, (30, 30), 20, 1, 5)
    sk = thin(ring.astype(bool))
    assert cv2.connectedComponents(sk.astype(np.uint8))[0] == 2  # one closed loop, still one piece
    assert np.allclose(np.hypot(*(np.argwhere(sk) - 30).T), 20, atol=2.0)
    assert not thin(np.zeros((5, 5), bool)).any()


def test_draw_gives_the_pen_width():
    pts = np.array([[10.0, 10.0], [60.0, 10.0]])
    for width in (1.0, 1.5, 3.0, 8.0):
        alpha, origin = draw(pts, np.array([[0, 1]]), width)
        # coverage of a line 50 px long (plus its round caps) and `width` wide
        assert alpha.sum() == pytest.approx(50 * width + np.pi * width ** 2 / 4, rel=0.12), width
        assert alpha.max() <= 1.0 and alpha.min() >= 0.0


def _mnist(mnist_test, label, k=0):
    images, labels = mnist_test
    i = int(np.flatnonzero(labels == label)[k])
    return images[i], label


def test_pen_digit_height_and_width(mnist_test):
    rng = np.random.default_rng(0)
    for label in range(10):
        img, _ = _mnist(mnist_test, label)
        for height, frac in ((25.0, 0.06), (300.0, 0.02)):
            a = pen_digit(img, label, height, 0.0, 0.0, Pen(width=frac), rng)
            ys = np.nonzero((a >= 0.35).any(axis=1))[0]
            assert abs((ys.max() - ys.min() + 1) - height) <= max(2.0, 0.06 * height), (label, height)
            ink = a >= 0.5
            width = ink.sum() / max(1, thin(ink).sum())
            assert 0.6 * frac * height <= width <= 1.6 * frac * height + 1.0, (label, height, width)


def test_skips_break_digits_into_pieces(mnist_test):
    rng = np.random.default_rng(1)
    broken = 0
    for label in range(10):
        for k in range(3):
            img, _ = _mnist(mnist_test, label, k)
            a = pen_digit(img, label, 60.0, 0.0, 0.0, Pen(width=0.06, skips=True), rng)
            whole = pen_digit(img, label, 60.0, 0.0, 0.0, Pen(width=0.06), rng)
            n = cv2.connectedComponents((a >= 0.5).astype(np.uint8))[0] - 1
            broken += n >= 2
            assert a.sum() < whole.sum()  # ink was taken out, none added
    assert broken >= 26  # of 30


def test_continental_strokes(mnist_test):
    rng = np.random.default_rng(2)
    for label in (0, 1, 7):
        s = skeleton(_mnist(mnist_test, label)[0])
        more = continental(s, label, rng)
        assert len(more.points) > len(s.points) and len(more.edges) > len(s.edges)
        assert (more.top, more.bottom) == (s.top, s.bottom)  # the digit's own extent sets its size
    s = skeleton(_mnist(mnist_test, 4)[0])
    assert continental(s, 4, rng) is s
    one = _mnist(mnist_test, 1)[0]
    plain = pen_digit(one, 1, 50.0, 0.0, 0.0, Pen(width=0.08), rng)
    flagged = pen_digit(one, 1, 50.0, 0.0, 0.0, Pen(width=0.08, continental=True), rng)
    assert flagged.sum() > plain.sum() + 0.2 * 50 * 4  # a flag at least a fifth of the height long


def test_no_strokes_no_digit():
    assert skeleton(np.zeros((28, 28), np.uint8)) is None
    assert pen_digit(np.zeros((28, 28), np.uint8), 3, 30.0, 0.0, 0.0, Pen(width=0.05), np.random.default_rng(0)) is None
