"""The networks' input recipes (``training.fields``): size, centring, aspect, stroke
width, masking, the wide fields, and that a rendered-then-segmented MNIST digit comes
back close to the original MNIST image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmarks.metrics import match
from benchmarks.scenes import SceneConfig, render_scene
from realtime.segment import segment
from training.fields import (BOX, PAIR_WIDTH, SIZE, TARGET_STROKE, WIDE_MARGIN, plain_resize, stroke_width,
                             to_mnist, to_mnist_batch, wide_field, wide_fields)

H = 150  # drawn digit height in pixels: a large digit close to the camera


def _draw(kind: str, thick: int, height: int = H) -> np.ndarray:
    """A digit-like ink image (float32, 1 = ink, anti-aliased) drawn with cv2, ``thick``-px
    strokes, its ink about ``height`` px tall, with a margin of paper around it."""
    w = int(0.6 * height)
    m = 30 + thick
    img = np.zeros((height + 2 * m, w + 2 * m), np.uint8)
    r = thick // 2
    if kind == "8":
        cx = m + w // 2
        cv2.ellipse(img, (cx, m + int(0.24 * height)), (int(0.36 * w), int(0.22 * height)), 0, 0, 360, 255, thick, cv2.LINE_AA)
        cv2.ellipse(img, (cx, m + int(0.7 * height)), (int(0.45 * w), int(0.28 * height)), 0, 0, 360, 255, thick, cv2.LINE_AA)
    elif kind == "2":
        cv2.ellipse(img, (m + w // 2, m + int(0.27 * height)), (w // 2 - r, int(0.27 * height) - r), 0, 180, 405, 255, thick, cv2.LINE_AA)
        cv2.line(img, (m + int(0.85 * w), m + int(0.45 * height)), (m + r, m + height - r), 255, thick, cv2.LINE_AA)
        cv2.line(img, (m + r, m + height - r), (m + w - r, m + height - r), 255, thick, cv2.LINE_AA)
    elif kind == "1":
        cv2.line(img, (m + w // 2 + 6, m + r), (m + w // 2 - 6, m + height - r), 255, thick, cv2.LINE_AA)
    else:
        raise ValueError(kind)
    return img.astype(np.float32) / 255.0


def _ink_box(out: np.ndarray, thr: float = 0.05) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(out > thr)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def stroke_width_28(img28: np.ndarray) -> float:
    """Mean stroke width (px at 28x28) of a grey 28x28 digit: upsampled 4x so strokes of
    one pixel or less are measured too, thresholded at half intensity."""
    big = cv2.resize(np.asarray(img28, np.float32), None, fx=4, fy=4, interpolation=cv2.INTER_LINEAR)
    return stroke_width(big > 0.5) / 4.0


# --------------------------------------------------------------------------- the recipe


@pytest.mark.parametrize("kind,thick", [("8", 2), ("2", 12), ("1", 14), ("8", 40)])
def test_output_format_size_and_centre(kind, thick):
    ink = _draw(kind, thick)
    out = to_mnist(ink, ink > 0.5)
    assert out.shape == (SIZE, SIZE) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 and out.max() == pytest.approx(1.0)
    x, y, w, h = _ink_box(out)
    assert abs(max(w, h) - BOX) <= 1, f"ink box {w}x{h}: longer side should be {BOX}"
    m = cv2.moments(out)
    cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
    assert abs(cx - SIZE / 2) <= 1 and abs(cy - SIZE / 2) <= 1, f"centre of mass ({cx:.2f}, {cy:.2f})"


def test_wide_ink_scales_by_its_width():
    ink = np.zeros((60, 200), np.float32)
    cv2.line(ink, (10, 30), (190, 30), 1.0, 14)  # a wide dash-like stroke
    out = to_mnist(ink, ink > 0.5)
    x, y, w, h = _ink_box(out)
    assert abs(w - BOX) <= 1 and h < 0.5 * w


def test_aspect_ratio_is_kept_and_plain_resize_stretches():
    ink = _draw("1", 14)  # a tall, thin stroke
    ys, xs = np.nonzero(ink > 0.5)
    src_aspect = (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)
    out = to_mnist(ink, ink > 0.5)
    x, y, w, h = _ink_box(out, 0.3)
    assert abs(h - BOX) <= 1
    assert w / h <= src_aspect + 0.15, f"'1' came out {w}x{h} (source aspect {src_aspect:.2f}): stretched"
    # the baseline stretches the crop to the full field
    crop = ink[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    plain = plain_resize(crop)
    assert plain.shape == (SIZE, SIZE) and plain.dtype == np.float32
    pw = _ink_box(plain, 0.3)[2]
    assert pw >= 0.8 * SIZE, f"plain resize width {pw}: expected the stroke stretched over the field"
    assert not np.allclose(plain, out, atol=0.1)


@pytest.mark.parametrize("kind", ["8", "2"])
@pytest.mark.parametrize("thick,label", [(2, "fine pen"), (40, "thick marker")])
def test_stroke_width_becomes_mnist_like(kind, thick, label):
    """A 150-px digit drawn with a 2-px pen would be a ~0.3-px hairline at 20 px, and one
    drawn with a 40-px marker a ~5-px blob; both must come out near MNIST's 2-3 px."""
    ink = _draw(kind, thick)
    out = to_mnist(ink, ink > 0.5)
    raw = to_mnist(ink, ink > 0.5, stroke=None)  # the same recipe without stroke adjustment
    sw, sw_raw = stroke_width_28(out), stroke_width_28(raw)
    msg = f"{label} '{kind}': stroke {sw:.2f} px at 28x28 (unadjusted {sw_raw:.2f})"
    assert 1.5 <= sw <= 4.0, msg
    assert abs(sw - TARGET_STROKE) < abs(sw_raw - TARGET_STROKE), msg


def test_mnist_stroke_width_reference(mnist_test):
    """The stroke measure used above puts real MNIST digits inside the same band."""
    images, _ = mnist_test
    widths = np.array([stroke_width_28(images[i] / 255.0) for i in range(300)])
    assert 1.5 <= float(np.median(widths)) <= 4.0, f"MNIST median stroke {np.median(widths):.2f}"


def test_mask_keeps_neighbours_out():
    digit = _draw("2", 12)
    h, w = digit.shape
    # a crop that also shows part of the next digit, touching the right edge
    crop = np.zeros((h, w + 40), np.float32)
    crop[:, :w] = digit
    cv2.line(crop, (w + 10, 20), (w + 35, h - 20), 1.0, 12)
    mask = np.zeros(crop.shape, bool)
    mask[:, :w] = digit > 0.5
    alone = to_mnist(digit, digit > 0.5)
    masked = to_mnist(crop, mask)
    np.testing.assert_allclose(masked, alone, atol=1e-5)
    unmasked = to_mnist(crop)  # without a mask the neighbour is part of the "digit"
    assert np.abs(unmasked - alone).max() > 0.5


def test_empty_input_gives_empty_field():
    out = to_mnist(np.zeros((40, 30), np.float32))
    assert out.shape == (SIZE, SIZE) and not out.any()
    assert not to_mnist(np.ones((40, 30), np.float32), np.zeros((40, 30), bool)).any()


# --------------------------------------------------------------------------- round trip


def test_rendered_digit_normalizes_back_to_its_mnist_image(mnist_test):
    """MNIST test digits written on (clean) paper, found by the segmenter and normalized,
    must look like the MNIST originals again: this is what makes an MNIST model work on
    camera crops. The renderer slants and rotates each digit a little, so correlation is
    high but not 1; the plain-resize baseline must do clearly worse."""
    images, _ = mnist_test
    ours, plain = [], []
    for seed in range(4):
        frame, truths, _ = render_scene(seed, SceneConfig.clean(digit_px=(40, 90)), mnist_test)
        page = segment(frame)
        ink, cands = page.ink, page.blobs
        res = match([{"box": c.box} for c in cands], truths)
        for i, j in res.pairs:
            c = cands[i]
            x, y, w, h = c.box
            ref = images[truths[j].mnist_index].astype(np.float32).ravel() / 255.0
            patch = ink[y:y + h, x:x + w]
            ours.append(np.corrcoef(to_mnist(patch, c.mask).ravel(), ref)[0, 1])
            plain.append(np.corrcoef(plain_resize(np.where(c.mask, patch, 0.0)).ravel(), ref)[0, 1])
            if len(ours) == 50:
                break
        if len(ours) == 50:
            break
    assert len(ours) == 50
    mean, mean_plain = float(np.mean(ours)), float(np.mean(plain))
    msg = f"Pearson with the MNIST original over 50 digits: {mean:.3f} (plain resize {mean_plain:.3f})"
    assert mean > 0.7, msg
    assert mean > mean_plain + 0.2, msg


def test_batch_normalization_matches_one_crop_at_a_time(mnist_test):
    """The per-frame hot path (uint8 fields, no per-crop trim, one scaling pass) must give
    the crops ``to_mnist`` gives one by one, on real segmenter output: thin, thick and
    mixed pens. Centre-of-mass ties may round to the other pixel, nothing more."""
    for seed, pen in ((0, -1), (1, 0), (2, 2)):
        frame, _, _ = render_scene(seed, SceneConfig.clean(pen_px=pen), mnist_test)
        page = segment(frame)
        ink, cands = page.ink, page.blobs
        assert len(cands) >= 10
        batch = to_mnist_batch(ink, [c.box for c in cands], [c.mask for c in cands])
        assert batch.shape == (len(cands), SIZE, SIZE) and batch.dtype == np.float32
        for c, got in zip(cands, batch):
            x, y, w, h = c.box
            want = to_mnist(ink[y:y + h, x:x + w], c.mask)
            assert got.max() == pytest.approx(1.0)
            # identical, or the same field shifted by one pixel
            same = np.abs(got - want).max() < 1e-6
            shifted = any(np.abs(np.roll(got, s, axis=a) - want).max() < 1e-6 for a in (0, 1) for s in (-1, 1))
            assert same or shifted, c.box
    assert len(to_mnist_batch(np.zeros((10, 10), np.uint8), [], [])) == 0


def test_wide_field_scales_to_mnist_height_and_keeps_its_margins():
    """Two digits side by side come out 20 px tall, centred, inside the field's margins;
    a very wide crop is scaled to fit its width instead."""
    pair = np.hstack([_draw("2", 8), _draw("8", 8)])
    out = wide_field(pair, pair > 0.5, PAIR_WIDTH)
    assert out.shape == (SIZE, PAIR_WIDTH) and out.dtype == np.float32 and out.max() == pytest.approx(1.0)
    x, y, w, h = _ink_box(out)
    assert abs(h - BOX) <= 1 and abs((x + w / 2) - PAIR_WIDTH / 2) <= 1.5
    long = np.hstack([_draw("1", 8)] * 8)
    x, y, w, h = _ink_box(wide_field(long, long > 0.5, PAIR_WIDTH))
    assert x >= WIDE_MARGIN and x + w <= PAIR_WIDTH - WIDE_MARGIN and h < BOX
    both = wide_fields(np.asarray(pair * 255, np.uint8), [(0, 0, pair.shape[1], pair.shape[0])], [pair > 0.5], PAIR_WIDTH)
    np.testing.assert_allclose(both[0], out, atol=1 / 255 + 1e-6)
    assert not wide_field(np.zeros((30, 40), np.float32), None, PAIR_WIDTH).any()
