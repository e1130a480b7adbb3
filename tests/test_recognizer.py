"""The recognizer end to end: real photos, rendered touching digits and non-digit marks,
batching, the two inference backends, empty/noise frames and bad checkpoints.

The real photos (``$PHOTOS_DIR``) are an evaluation set only: these tests report how the
shipped checkpoint does on them against the project's targets; nothing is tuned on them.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict

import cv2
import numpy as np
import pytest

from benchmarks.metrics import Counts, match, score_frame
from benchmarks.scenes import SceneConfig, render_scene, render_sheet_with_distractors
from realtime.recognizer import Recognizer, _quantize_int8, _stem_nodes, onnx_graph
from training.checkpoint import CheckpointError
from tests.live_fixtures import *  # noqa: F401,F403  (fixtures: mnist_test, photos_dir, recognizer)


@pytest.fixture(scope="module")
def single_photos(photos_dir):
    rows = list(csv.DictReader(open(photos_dir / "digits" / "labels.csv", newline="")))
    images = []
    for r in rows:
        img = cv2.imread(str(photos_dir / "digits" / r["path"]))
        assert img is not None, f"cannot read {r['path']}"
        images.append(img)
    return rows, images, [int(r["label"]) for r in rows]


@pytest.fixture(scope="module")
def sheets(photos_dir):
    labels = json.loads((photos_dir / "sheets" / "labels.json").read_text())
    out = []
    for name, d in labels.items():
        img = cv2.imread(str(photos_dir / "sheets" / name))
        assert img is not None, f"cannot read {name}"
        out.append((name, img, [{"box": t["box_xywh"], "label": int(t["label"])} for t in d["digits"]]))
    return out


# --------------------------------------------------------------------------- real photos


def test_real_single_digit_photos(recognizer, single_photos):
    rows, images, truth = single_photos
    assert len(images) == 70
    preds = recognizer.classify(images)
    right = sum(p == t for (p, _), t in zip(preds, truth))
    wrong = [(r["path"], t, p) for r, (p, _), t in zip(rows, preds, truth) if p != t]
    assert right >= 0.95 * len(truth), f"{right}/{len(truth)} photos read right; wrong (path, truth, read): {wrong}"


def test_real_sheets(recognizer, sheets):
    total = Counts()
    per_sheet = {}
    for name, img, truths in sheets:
        c = score_frame(recognizer.detect(img), truths, iou_thr=0.3)
        per_sheet[name] = (c.correct, c.true_digits, c.detections)
        total += c
    assert total.true_digits == 50
    assert total.read_correctly >= 0.95, (f"sheets: {total.correct}/{total.true_digits} digits read correctly, "
                                          f"precision {total.precision:.2f}; per sheet (correct, digits, detections) {per_sheet}")


def test_plain_resize_baseline_is_worse_on_photos(recognizer, single_photos):
    _, images, truth = single_photos
    ours = sum(p == t for (p, _), t in zip(recognizer.classify(images), truth))
    plain = sum(p == t for (p, _), t in zip(recognizer.classify(images, plain=True), truth))
    assert plain < ours, f"plain resize {plain}/{len(truth)} vs MNIST-style {ours}/{len(truth)}"


# --------------------------------------------------------------------------- the network


@pytest.fixture(scope="module")
def frame_crops(recognizer, mnist_test):
    frame, truths, _ = render_scene(0, SceneConfig.clean(), mnist_test)
    ink, cands = recognizer.candidates(frame)
    crops = recognizer.crops(ink, cands)
    assert len(crops) >= 10
    return crops


def test_predict_batch_equals_single_calls(recognizer, frame_crops):
    batch = recognizer.predict(frame_crops)
    classes = len(recognizer.class_names)  # 10 digits, and "not a digit" when trained with it
    assert classes in (10, 11)
    assert batch.shape == (len(frame_crops), classes)
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, atol=1e-5)
    single = np.concatenate([recognizer.predict(frame_crops[i:i + 1]) for i in range(len(frame_crops))])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    assert recognizer.predict(frame_crops[:0]).shape == (0, classes)


def test_torch_and_onnx_backends_agree(recognizer, frame_crops):
    torch_rec = Recognizer.load(recognizer.weights_path, backend="torch")
    onnx_rec = Recognizer.load(recognizer.weights_path, backend="onnx")
    assert torch_rec.backend.name == "torch" and onnx_rec.backend.name == "onnxruntime"
    rng = np.random.default_rng(0)
    x = np.concatenate([frame_crops, rng.random((8, 28, 28), dtype=np.float32)])
    np.testing.assert_allclose(torch_rec.predict(x), onnx_rec.predict(x), atol=1e-4)


def test_int8_backend_reads_like_float(recognizer, frame_crops, mnist_test):
    """The default backend quantizes to int8 from the checkpoint's calibration images; it
    must read what the float model reads: real frame crops and 2,000 MNIST test digits."""
    assert recognizer.backend.name == "onnxruntime int8"
    float_rec = Recognizer.load(recognizer.weights_path, backend="onnx")
    p8, pf = recognizer.predict(frame_crops), float_rec.predict(frame_crops)
    assert (p8.argmax(1) == pf.argmax(1)).all()
    assert np.abs(p8 - pf).max() < 0.15  # quantization noise, not a different model
    images, labels = mnist_test
    x = images[:2000].astype(np.float32) / 255
    acc8 = (recognizer.predict(x).argmax(1) == labels[:2000]).mean()
    accf = (float_rec.predict(x).argmax(1) == labels[:2000]).mean()
    assert acc8 >= accf - 0.002, (acc8, accf)


def test_int8_graph_keeps_the_stem_in_float(recognizer):
    """The one-input-channel stem runs in float32 (int8 kernels handle that shape badly,
    see ``_stem_nodes``); every later convolution is quantized."""
    import onnx

    graph = onnx_graph(recognizer.model)
    stem = _stem_nodes(graph)
    ops = [n.op_type for n in onnx.load_from_string(graph).graph.node]
    assert ops[: len(stem)] == ["Conv", "Relu", "MaxPool"]
    calib = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    q = onnx.load_from_string(_quantize_int8(graph, calib))
    convs = [n for n in q.graph.node if n.op_type == "Conv"]
    # the first Conv reads the float weight directly; the others read dequantized int8
    weight_inputs = [n.input[1] for n in convs]
    first, rest = weight_inputs[0], weight_inputs[1:]
    producers = {o: n.op_type for n in q.graph.node for o in n.output}
    assert producers.get(first) != "DequantizeLinear"
    assert rest and all(producers.get(w) == "DequantizeLinear" for w in rest)


def test_int8_needs_calibration_images(recognizer, tmp_path):
    from training.checkpoint import read_checkpoint, save_checkpoint

    ckpt = read_checkpoint(recognizer.weights_path)
    del ckpt["calibration"]
    path = save_checkpoint(ckpt, tmp_path / "old.pt")
    assert Recognizer.load(path).backend.name == "onnxruntime"  # auto falls back to float
    with pytest.raises(CheckpointError, match="calibration"):
        Recognizer.load(path, backend="int8")
    ckpt["calibration"] = ckpt["state_dict"]["head.weight"]  # wrong dtype and shape
    save_checkpoint(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="calibration images must be uint8"):
        Recognizer.load(tmp_path / "bad.pt")


# --------------------------------------------------------------------------- rendered scenes


def test_touching_digits_are_split_and_read(recognizer, mnist_test):
    """Every number drawn with its digits touching (overlapping by 1-2 px). Measured 0.94
    with the pair reader (0.78 without it)."""
    total = Counts()
    by_len: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # digits in number -> [digits, read right]
    for seed in range(6):
        frame, truths, _ = render_scene(seed, SceneConfig.clean(touching_prob=1.0, group_prob=1.0), mnist_test)
        dets = recognizer.detect(frame)
        total += score_frame(dets, truths)
        res = match(dets, truths)
        right = {j for i, j in res.pairs if dets[i].digit == truths[j].label}
        sizes = Counter(t.number_id for t in truths)
        for j, t in enumerate(truths):
            by_len[sizes[t.number_id]][0] += 1
            by_len[sizes[t.number_id]][1] += j in right
    breakdown = ", ".join(f"{k}-digit numbers {v[1]}/{v[0]}" for k, v in sorted(by_len.items()))
    assert total.read_correctly >= 0.88, (f"touching digits: {total.correct}/{total.true_digits} read correctly "
                                         f"({total.read_correctly:.2f}), precision {total.precision:.2f}; {breakdown}")


def test_non_digit_marks_are_not_read_as_digits(recognizer, mnist_test):
    """Script letters, scribbles, dots and dashes beside numbers. Measured precision 0.966
    (recall 1.0); 0.904 with the ninth session's pair reader, 0.877 with none."""
    total = Counts()
    for seed in range(6):
        frame, truths, _ = render_sheet_with_distractors(seed, config=SceneConfig.clean(), digits=mnist_test)
        total += score_frame(recognizer.detect(frame), truths)
    assert total.recall >= 0.9, f"digits among distractors: recall {total.recall:.2f}"
    assert total.precision >= 0.95, (f"precision {total.precision:.3f}: {total.detections - total.matched} of "
                                     f"{total.detections} detections are on letters/scribbles/dots/dashes")


def _ink_box(image: np.ndarray) -> np.ndarray:
    """An MNIST image cropped to its ink (pixels above 64)."""
    ys, xs = np.nonzero(image > 64)
    return image[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def test_a_wide_single_digit_is_read_whole(recognizer, mnist_test):
    """A digit written wide (a flat 2, a sprawling 5; aspect 1.55) is one digit: it must be
    read, not dropped as "too wide for one digit" nor cut in two."""
    images, labels = mnist_test
    read = 0
    picks = [i for i in range(200) if labels[i] in (0, 2, 3, 5, 7)][:12]
    for i in picks:
        ink = _ink_box(images[i])
        glyph = 255 - cv2.resize(ink, (78, 50), interpolation=cv2.INTER_CUBIC)
        frame = np.full((240, 320), 230, np.uint8)
        frame[80:80 + glyph.shape[0], 100:100 + glyph.shape[1]] = np.minimum(230, glyph)
        assert glyph.shape[1] / glyph.shape[0] > 1.35
        dets = recognizer.detect(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
        read += len(dets) == 1 and dets[0].digit == labels[i]
    assert read >= 10, f"{read}/{len(picks)} wide digits read whole and right"


def test_a_digit_broken_in_two_is_read_as_one(recognizer, mnist_test):
    """A pen that skips breaks a digit into two pieces that each look digit-like (a 3's
    two bowls, a 5's bar above its body, a 0's two sides). The pieces are read as the
    one digit they form, not as two digits or two fragments."""
    images, labels = mnist_test
    read = cases = 0
    picks = [i for i in range(400) if labels[i] in (0, 2, 3, 5, 7, 8)][:30]
    for i in picks:
        ink = _ink_box(images[i])
        glyph = cv2.resize(ink, (max(12, round(60 * ink.shape[1] / ink.shape[0])), 60), interpolation=cv2.INTER_CUBIC)
        # a horizontal gap for digits with a waist, a vertical one for 0s
        gap = glyph.copy()
        if labels[i] == 0:
            mid = glyph.shape[1] // 2
            gap[:, mid - 3:mid + 3] = 0
        else:
            gap[27:33] = 0
        n, _, stats, _ = cv2.connectedComponentsWithStats((gap > 64).astype(np.uint8), connectivity=8)
        if n != 3 or min(stats[1:, cv2.CC_STAT_HEIGHT]) < 14:
            continue  # not two digit-sized pieces
        cases += 1
        frame = np.full((240, 320), 230, np.uint8)
        frame[80:140, 100:100 + gap.shape[1]] = 230 - (gap.astype(np.float32) * 0.85).astype(np.uint8)
        dets = recognizer.detect(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
        read += len(dets) == 1 and dets[0].digit == labels[i]
    assert cases >= 10, f"only {cases} digits broke into two pieces"
    assert read >= 0.8 * cases, f"{read}/{cases} broken digits read as one and right"


def test_empty_and_noise_frames_give_nothing(recognizer):
    white = np.full((480, 640, 3), 235, np.uint8)
    assert recognizer.detect(white) == []
    rng = np.random.default_rng(0)
    uniform = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert len(recognizer.detect(uniform)) <= 1
    # sensor noise on blank, unevenly lit paper
    yy, xx = np.mgrid[0:480, 0:640]
    paper = 200 + 30 * xx / 640 - 20 * yy / 480 + rng.normal(0, 6, (480, 640))
    sensor = np.repeat(np.clip(paper, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    assert len(recognizer.detect(sensor)) <= 1


# --------------------------------------------------------------------------- checkpoints


def test_missing_or_broken_checkpoint_raises(tmp_path):
    with pytest.raises(CheckpointError):
        Recognizer.load("nonexistent.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError):
        Recognizer.load(junk)
