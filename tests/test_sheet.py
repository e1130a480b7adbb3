"""The sheet (``realtime.sheet.paper_mask``): found on a desk, never on a frame of paper,
never cut by a shadow, its corners kept under a shadow."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmarks.metrics import match
from benchmarks.scenes import SceneConfig, render_scene
from realtime.imaging import ink_gray
from realtime.segment import segment
from realtime.sheet import inset, paper_mask

SEEDS = (0, 1, 2)


def _segment_and_match(frame, truths):
    cands = segment(frame).blobs
    return cands, match([{"box": c.box} for c in cands], truths)


@pytest.mark.parametrize("tilt", [0.0, 0.8])
def test_paper_mask_finds_sheet_on_desk(mnist_test, tilt):
    for seed in SEEDS:
        frame, truths, _ = render_scene(seed, SceneConfig.clean(desk=True, tilt=tilt), mnist_test)
        mask = paper_mask(ink_gray(frame))
        assert mask is not None, f"seed {seed} tilt {tilt}: no sheet found although a desk shows"
        assert mask.shape == frame.shape[:2] and mask.dtype == np.uint8
        covered = [float((mask[y:y + h, x:x + w] > 0).mean()) for x, y, w, h in (t.box for t in truths)]
        assert min(covered) >= 0.99, f"seed {seed} tilt {tilt}: a digit lies partly outside the mask ({min(covered):.2f})"
        # the desk (every frame corner shows desk with desk=True) is outside
        h, w = mask.shape
        assert not any(mask[y, x] for y, x in ((0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)))
        assert 0.2 < float((mask > 0).mean()) < 0.95


@pytest.mark.parametrize("overrides", [{}, {"shadow": 1.0}, {"n_digits": 0}], ids=["plain", "shadow", "blank"])
def test_paper_mask_none_when_frame_is_all_paper(mnist_test, overrides):
    for seed in SEEDS:
        frame, _, _ = render_scene(seed, SceneConfig.clean(**overrides), mnist_test)
        assert paper_mask(ink_gray(frame)) is None, f"seed {seed} {overrides}: a sheet edge found on all-paper frame"


@pytest.mark.parametrize("seed, overrides", [
    (9, {"shadow": 1.0, "lines": "ruled", "paper": "gray"}),
    (11, {"shadow": 1.0, "lines": "ruled", "paper": "gray"}),
    (9, {"shadow": 0.7, "blur": "defocus", "lines": "ruled"}),
])
def test_deep_shadow_on_all_paper_is_not_a_sheet_edge(mnist_test, seed, overrides):
    """A deep, soft shadow with a row of digits along it: the shaded part is darker by
    more than a desk would be, and the digits give the border sharp gradients, but
    the light does not step down across it. (A gradient test at 1/8 scale took these
    frames for a sheet on a desk and dropped 9-14 digits in each.)"""
    frame, truths, _ = render_scene(seed, SceneConfig.clean(**overrides), mnist_test)
    assert paper_mask(ink_gray(frame)) is None
    _, found = _segment_and_match(frame, truths)
    assert len(found.missed_truths) <= 1, f"{len(found.missed_truths)} of {len(truths)} digits lost"


@pytest.mark.parametrize("seed, overrides", [
    (0, {"desk": True, "shadow": 0.8, "tilt": 0.5}),
    (6, {"desk": True, "shadow": 1.0, "paper": "gray"}),
])
def test_shadow_over_a_sheet_corner_keeps_the_corner(mnist_test, seed, overrides):
    """A shadow across one corner of a sheet on a desk makes the corner as dark as the
    desk; the sheet's two edges still meet there, so the corner stays in the mask."""
    frame, truths, _ = render_scene(seed, SceneConfig.clean(**overrides), mnist_test)
    mask = paper_mask(ink_gray(frame))
    assert mask is not None
    outside = [t.box for t in truths if not mask[t.box[1] + t.box[3] // 2, t.box[0] + t.box[2] // 2]]
    assert outside == [], f"digits outside the sheet mask: {outside}"
    h, w = mask.shape
    assert not any(mask[y, x] for y, x in ((0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)))
    _, found = _segment_and_match(frame, truths)
    assert found.missed_truths == [], f"{len(found.missed_truths)} of {len(truths)} digits lost"




def _slanted_sheet_on_dark_desk(seed: int, bow: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """A blank page turned a few degrees on a dark, grainy desk (900x1600, the size of a
    phone photo of a page), its long edges bowed in by ``bow`` px (a page's curl, which
    its convex hull bridges): the frame and the page's own pixels."""
    rng = np.random.default_rng(seed)
    h, w = 1600, 900
    desk = 30 + 25 * rng.random((h // 4, w)).repeat(4, axis=0)  # grain along the boards
    frame = np.clip(desk + rng.normal(0, 4, (h, w)), 0, 255).astype(np.uint8)
    angle = np.deg2rad(rng.uniform(3, 8))
    c, s = np.cos(angle), np.sin(angle)
    corners = np.array([[-330, -620], [330, -620], [330, 620], [-330, 620]], np.float64)
    poly = (corners @ np.array([[c, s], [-s, c]])) + (w / 2, h / 2)
    t = np.linspace(0, 1, 40)[1:-1, None]

    def bowed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        inward = np.array([-(b - a)[1], (b - a)[0]]) / np.hypot(*(b - a))
        return a + t * (b - a) + bow * np.sin(np.pi * t) * inward

    outline = np.vstack([poly[0], poly[1], bowed(poly[1], poly[2]), poly[2], poly[3], bowed(poly[3], poly[0])])
    sheet = np.zeros((h, w), np.uint8)
    cv2.fillPoly(sheet, [np.rint(outline).astype(np.int32)], 255)
    frame[sheet > 0] = np.clip(215 + rng.normal(0, 3, int((sheet > 0).sum())), 0, 255).astype(np.uint8)
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), sheet


@pytest.mark.parametrize("seed", SEEDS)
def test_slanted_sheet_edge_holds_no_desk(seed):
    # grown from the small copy's cells, a slanted edge was a staircase with a sliver of
    # desk on its steps: a row of 1s along the page's edge (7-13 per frame here)
    frame, sheet = _slanted_sheet_on_dark_desk(seed)
    mask = paper_mask(ink_gray(frame))
    assert mask is not None
    assert not np.any((mask > 0) & (sheet == 0)), "desk pixels inside the paper mask"
    assert float((mask > 0).sum()) > 0.9 * float((sheet > 0).sum())
    assert segment(frame).blobs == []


def test_inset_moves_every_edge_in():
    square = np.array([[0, 0], [100, 0], [100, 100], [0, 100]], np.float64)
    for poly in (square, square[::-1]):
        inner = inset(poly, 10)
        assert np.allclose(np.sort(inner[:, 0]), [10, 10, 90, 90]) and np.allclose(np.sort(inner[:, 1]), [10, 10, 90, 90])
    assert np.array_equal(inset(square, 60), square)  # no room for that margin
