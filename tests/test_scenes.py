"""The synthetic scene renderer: determinism, exact truth, conditions, video, dataset, CLI."""

from __future__ import annotations

import json
import os
import time

import cv2
import numpy as np
import pytest

from benchmarks import scenes
from benchmarks.scenes import SceneConfig, Truth, render_frames, render_scene, render_video

W, H = 640, 480


@pytest.fixture(scope="module")
def digits():
    data_dir = os.environ.get("MNIST_DIR")
    if not data_dir:
        pytest.skip("MNIST_DIR is not set: the scene renderer needs the MNIST test split")
    from training.data import load_mnist

    images, labels = load_mnist("test", data_dir)
    return images.numpy(), labels.numpy()


def gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)


def truth_mask(truths: list[Truth], shape: tuple[int, int], grow: int = 0) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for t in truths:
        x, y, w, h = t.box
        mask[max(0, y - grow): y + h + grow, max(0, x - grow): x + w + grow] = True
    return mask


def test_same_seed_same_frame_and_truths(digits):
    f1, t1, c1 = render_scene(7, digits=digits)
    f2, t2, c2 = render_scene(7, digits=digits)
    assert np.array_equal(f1, f2)
    assert t1 == t2 and c1 == c2
    f3, t3, _ = render_scene(8, digits=digits)
    assert not np.array_equal(f1, f3)
    assert [t.mnist_index for t in t1] != [t.mnist_index for t in t3]


def test_frame_format_and_resolved_config(digits):
    frame, truths, cfg = render_scene(3, digits=digits)
    assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
    assert all(getattr(cfg, f) is not None for f in ("paper", "lines", "ink", "pen_px", "desk", "tilt",
                                                      "shadow", "blur", "noise", "jpeg", "brightness"))
    assert 10 <= len(truths) <= cfg.n_digits
    # Fixed conditions are kept as given.
    _, _, cfg2 = render_scene(3, SceneConfig(paper="yellow", lines="grid", desk=True, tilt=0.0), digits=digits)
    assert (cfg2.paper, cfg2.lines, cfg2.desk, cfg2.tilt) == ("yellow", "grid", True, 0.0)


@pytest.mark.parametrize("seed", range(6))
def test_truth_boxes_inside_frame_on_ink_with_mnist_labels(digits, seed):
    images, labels = digits
    frame, truths, cfg = render_scene(100 + seed, digits=digits)
    g = gray(frame)
    # Darkness relative to the local paper (a max filter removes strokes), so that a
    # shadow edge next to a digit does not pass for ink or hide it.
    dark = cv2.dilate(g, np.ones((25, 25), np.uint8)) - g
    others = truth_mask(truths, g.shape, grow=2)
    assert truths, "a default scene has digits"
    for t in truths:
        x, y, w, h = t.box
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= W and y + h <= H, t.box
        assert t.label == int(labels[t.mnist_index])
        m = max(4, h // 3)
        ring = np.zeros_like(others)
        ring[max(0, y - m): y + h + m, max(0, x - m): x + w + m] = True
        ring &= ~others
        assert ring.sum() > 20
        inside = dark[y: y + h, x: x + w]
        assert inside.mean() > dark[ring].mean() + 3, (seed, t, cfg)
        assert np.percentile(inside, 95) > 20, (seed, t, cfg)


def test_clean_boxes_are_tight_and_sized(digits):
    cfg = SceneConfig.clean(digit_px=(40, 40), n_digits=30)
    frame, truths, _ = render_scene(5, cfg, digits=digits)
    g = gray(frame)
    paper = np.median(g[~truth_mask(truths, g.shape, grow=3)])
    assert len(truths) >= 20
    for t in truths:
        x, y, w, h = t.box
        box = g[y: y + h, x: x + w]
        inside_dark = paper - box
        assert inside_dark.mean() > 15  # on white paper with black ink the box is clearly dark
        # Tight: each edge row/column of the box holds ink above the truth threshold.
        for edge in (box[0], box[-1], box[:, 0], box[:, -1]):
            assert (paper - edge).max() > 40, t
        # Ink height is the requested 40 px, give or take slant and rotation.
        assert 34 <= h <= 48, t


@pytest.mark.parametrize("px", [(20, 20), (150, 160)])
def test_digit_sizes_from_small_to_large(digits, px):
    frame, truths, _ = render_scene(11, SceneConfig.clean(digit_px=px), digits=digits)
    assert truths
    heights = np.array([t.box[3] for t in truths])
    assert px[0] * 0.8 <= np.median(heights) <= px[1] * 1.2


def test_numbers_grouped_with_small_gaps(digits):
    cfg = SceneConfig.clean(digit_px=(40, 40), group_prob=0.7)
    _, truths, _ = render_scene(2, cfg, digits=digits)
    ids = [t.number_id for t in truths]
    assert ids == sorted(ids), "number ids follow reading order"
    inner, outer = [], []
    for a, b in zip(truths, truths[1:]):
        same_row = abs((a.box[1] + a.box[3]) - (b.box[1] + b.box[3])) < 20
        if not same_row:
            continue
        gap = b.box[0] - (a.box[0] + a.box[2])
        (inner if a.number_id == b.number_id else outer).append(gap)
    assert inner and outer
    assert max(inner) < 40 * 0.6 < min(outer)  # small gaps within, big gaps between numbers
    assert min(inner) >= 0  # no touching unless asked for


def test_touching_pairs(digits):
    cfg = SceneConfig.clean(digit_px=(40, 40), group_prob=1.0, touching_prob=1.0)
    _, truths, _ = render_scene(4, cfg, digits=digits)
    overlaps = [a.box[0] + a.box[2] - b.box[0] for a, b in zip(truths, truths[1:]) if a.number_id == b.number_id]
    assert overlaps and sum(o > 0 for o in overlaps) >= len(overlaps) // 2


def test_distractors_add_ink_outside_truth(digits):
    def ink_outside(frame, truths):
        g = gray(frame)
        dark = g < np.median(g) - 80
        return int((dark & ~truth_mask(truths, g.shape, grow=2)).sum())

    clean = SceneConfig.clean(digit_px=(40, 40))
    frame, truths, _ = render_scene(9, clean, digits=digits)
    assert ink_outside(frame, truths) == 0
    frame, truths, cfg = scenes.render_sheet_with_distractors(9, config=clean, digits=digits)
    assert cfg.distractors == scenes.DISTRACTOR_KINDS
    assert truths and all(0 <= t.label <= 9 for t in truths)
    assert ink_outside(frame, truths) > 100


def test_ruled_paper_has_horizontal_lines(digits):
    cfg = SceneConfig.clean(lines="ruled", n_digits=0)
    frame, truths, _ = render_scene(1, cfg, digits=digits)
    assert truths == []
    g = gray(frame)
    rows, cols = g.mean(axis=1), g.mean(axis=0)
    assert np.std(np.diff(rows)) > 4 * np.std(np.diff(cols))
    plain = gray(render_scene(1, SceneConfig.clean(lines="plain", n_digits=0), digits=digits)[0])
    grid = gray(render_scene(1, SceneConfig.clean(lines="grid", n_digits=0), digits=digits)[0])
    for axis in (0, 1):  # grid: structure both ways; plain: neither
        assert np.std(np.diff(grid.mean(axis=axis))) > 4 * np.std(np.diff(plain.mean(axis=axis)))


def test_desk_visible_around_sheet(digits):
    on, _, _ = render_scene(6, SceneConfig.clean(desk=True, n_digits=0), digits=digits)
    off, _, _ = render_scene(6, SceneConfig.clean(desk=False, n_digits=0), digits=digits)
    for frame, differs in ((on, True), (off, False)):
        g = gray(frame)
        border = np.concatenate([g[:8].ravel(), g[-8:].ravel(), g[:, :8].ravel(), g[:, -8:].ravel()])
        centre = np.median(g[H // 3: 2 * H // 3, W // 3: 2 * W // 3])
        assert (abs(np.median(border) - centre) > 40) == differs


def test_ink_colours(digits):
    for ink, check in (("blue", lambda b, gr, r: b > r + 40), ("red", lambda b, gr, r: r > b + 40)):
        frame, truths, _ = render_scene(3, SceneConfig.clean(ink=ink, digit_px=(50, 60)), digits=digits)
        g = gray(frame)
        dark = (g < np.median(g) - 60) & truth_mask(truths, g.shape)
        b, gr, r = (frame[..., i][dark].mean() for i in range(3))
        assert check(b, gr, r), (ink, b, gr, r)


def test_tilted_sheet_truth_follows_warp(digits):
    cfg = SceneConfig.clean(tilt=1.0, desk=True, digit_px=(40, 50))
    frame, truths, _ = render_scene(12, cfg, digits=digits)
    g = gray(frame)
    assert truths
    for t in truths:
        x, y, w, h = t.box
        assert 0 <= x and 0 <= y and x + w <= W and y + h <= H
        assert np.median(g) - g[y: y + h, x: x + w].min() > 60


def test_steady_video_frames(digits):
    cfg = SceneConfig(width=320, height=240, digit_px=(20, 40), noise=3.0)
    frames = list(render_frames(5, 4, cfg, motion="steady", digits=digits))
    assert len(frames) == 4
    assert all(t == frames[0][1] for _, t in frames)  # fixed camera: same truth
    assert not np.array_equal(frames[0][0], frames[1][0])  # but fresh sensor noise


def test_slow_video_moves_smoothly(digits):
    cfg = SceneConfig(width=320, height=240, digit_px=(20, 40))
    frames = list(render_frames(5, 30, cfg, motion="slow", digits=digits))
    first = {t.mnist_index: t.box for t in frames[0][1]}
    last = {t.mnist_index: t.box for t in frames[-1][1]}
    assert first and any(first[k] != last[k] for k in first.keys() & last.keys())  # the camera moved
    for (_, a), (_, b) in zip(frames, frames[1:]):
        bb = {t.mnist_index: t.box for t in b}
        for t in a:
            if t.mnist_index in bb:
                assert abs(bb[t.mnist_index][0] - t.box[0]) <= 4 and abs(bb[t.mnist_index][1] - t.box[1]) <= 4


def test_render_video_file(digits, tmp_path):
    path = tmp_path / "clip.mp4"
    cfg = SceneConfig(width=320, height=240, digit_px=(20, 40))
    truths = render_video(path, seed=1, n_frames=12, fps=15, config=cfg, digits=digits)
    assert len(truths) == 12
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (240, 320, 3)
        n += 1
    cap.release()
    assert n == 12


def test_write_dataset(digits, tmp_path):
    cfg = SceneConfig(width=320, height=240, digit_px=(20, 50))
    truth_path = scenes.write_dataset(tmp_path / "ds", n_frames=2, seed=3, config=cfg, digits=digits)
    data = json.loads(truth_path.read_text())
    assert [f["file"] for f in data["frames"]] == ["frame_0000.png", "frame_0001.png"]
    for rec in data["frames"]:
        img = cv2.imread(str(tmp_path / "ds" / rec["file"]))
        assert img.shape == (rec["height"], rec["width"], 3) == (240, 320, 3)
        assert rec["config"]["paper"] in scenes.PAPERS
        assert SceneConfig.from_dict(rec["config"]).digit_px == (20, 50)
        for d in rec["digits"]:
            assert set(d) >= {"box", "label", "number_id"} and len(d["box"]) == 4
    # Frame i of a dataset is render_scene(frame_seed(seed, i)).
    frame, truths, _ = render_scene(scenes.frame_seed(3, 1), cfg, digits=digits)
    assert [t.to_dict() for t in truths] == data["frames"][1]["digits"]


def test_cli(digits, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = scenes.main(["--out", str(out), "--frames", "2", "--seed", "4", "--width", "320", "--height", "240",
                      "--digit-px", "20", "50", "--data-dir", os.environ["MNIST_DIR"]])
    assert rc == 0
    assert (out / "frame_0001.png").is_file() and (out / "truth.json").is_file()
    capsys.readouterr()
    assert scenes.main(["--frames", "2"]) != 0  # neither --out nor --video
    assert scenes.main(["--out", str(out), "--paper", "pink"]) != 0
    assert scenes.main(["--out", str(out), "--digit-px", "50", "20"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all("error" in line for line in err)


def test_bad_config_is_rejected(digits):
    with pytest.raises(ValueError, match="paper"):
        render_scene(0, SceneConfig(paper="pink"), digits=digits)
    with pytest.raises(ValueError, match="motion"):
        list(render_frames(0, 2, motion="shaky", digits=digits))


def test_render_speed(digits):
    render_scene(0, digits=digits)  # warm-up
    t0 = time.perf_counter()
    for seed in range(5):
        render_scene(seed, digits=digits)
    per_frame = (time.perf_counter() - t0) / 5
    assert per_frame < 0.5  # ~40 ms on 2 busy cores; this only catches a gross regression
