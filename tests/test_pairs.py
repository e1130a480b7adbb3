"""The pair reader: its crop recipe, the composed training pairs, its checkpoint, and
what it buys on rendered touching digits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from benchmarks.metrics import Counts, score_frame
from benchmarks.scenes import SceneConfig, render_scene
from realtime.pairs import MAX_W, WIDTH, decode, pair_field
from realtime.recognizer import DEFAULT_PAIR_WEIGHTS, Recognizer
from training.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from training.pairs import _next_to, make_sample
from tests.live_fixtures import *  # noqa: F403 - pytest fixtures


def _ink_extent(field: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(field > 0.1)
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def test_pair_field_scales_by_height_and_centres():
    ink = np.zeros((60, 100), np.uint8)
    cv2.circle(ink, (30, 30), 25, 255, 5)
    cv2.circle(ink, (72, 30), 25, 255, 5)
    field = pair_field(ink)
    assert field.shape == (28, WIDTH) and field.dtype == np.float32
    assert field.max() == pytest.approx(1.0)
    y0, y1, x0, x1 = _ink_extent(field)
    assert 19 <= y1 - y0 <= 22  # the pair's height goes to MNIST's 20 px
    assert abs((x0 + x1) / 2 - WIDTH / 2) <= 1.5  # centred
    # a very wide blob is scaled to fit instead of being cut off
    wide = np.zeros((20, 200), np.uint8)
    wide[2:18, 2:198] = 255
    y0, y1, x0, x1 = _ink_extent(pair_field(wide))
    assert x1 - x0 <= MAX_W + 1 and x0 >= 1 and y1 - y0 < 10
    assert not pair_field(np.zeros((5, 5), np.uint8)).any()


def test_touching_offset_overlaps_strong_ink_by_the_asked_pixels():
    left = np.zeros((10, 6), np.uint8)
    left[:, 4:6] = 255  # a bar at columns 4-5
    right = np.zeros((10, 6), np.uint8)
    right[:, 0:2] = 255  # a bar at columns 0-1
    assert _next_to(left, 0, right, 0, 0) == 6  # side by side, no overlap
    assert _next_to(left, 0, right, 0, 2) == 4  # the bars share 2 columns
    assert _next_to(left, 0, right, 0, -1) == 7  # a 1-px gap


def test_composed_samples_are_consistent():
    rng = np.random.default_rng(0)
    images = np.zeros((10, 28, 28), np.uint8)
    for d in range(10):
        cv2.putText(images[d], str(d), (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    labels = np.arange(10)
    pairs = marks = 0
    for _ in range(100):
        s = make_sample(images, labels, rng)
        if s is None:
            continue
        field, a, b, is_pair, end, start, is_digits = s
        assert field.shape == (28, WIDTH) and field.dtype == np.uint8 and field.max() > 200
        if is_pair:
            pairs += 1
            assert 0 <= a <= 9 and 0 <= b <= 9 and is_digits == 1
            # the left digit ends right of where the right one starts, or just before
            assert 0.2 < end <= 1.0 and 0.0 <= start < 0.8 and start < end + 0.2
        else:
            assert (a, b, end, start) == (-1, -1, 0.0, 0.0)
            marks += 1 - is_digits
    assert 30 <= pairs <= 65 and 10 <= marks <= 35, (pairs, marks)


def test_decode_splits_the_outputs():
    logits = np.zeros((1, 24))
    logits[0, 3], logits[0, 17], logits[0, 20], logits[0, 21], logits[0, 22], logits[0, 23] = 9, 9, 5, 0, -5, -5
    left, right, is_pair, ends, digits = decode(logits)
    assert left[0].argmax() == 3 and right[0].argmax() == 7
    assert left[0].sum() == pytest.approx(1.0) and is_pair[0] > 0.99
    assert ends[0, 0] == pytest.approx(0.5) and ends[0, 1] < 0.01
    assert digits[0] < 0.01
    # a reader trained before the "digits" output takes every crop for digits
    assert decode(logits[:, :23])[4][0] == 1.0


def test_a_digit_checkpoint_is_not_taken_for_a_pair_reader(recognizer):
    with pytest.raises(CheckpointError, match="not a pair reader"):
        Recognizer.load(recognizer.weights_path, pair_weights=recognizer.weights_path)
    with pytest.raises(CheckpointError, match="not found"):
        Recognizer.load(recognizer.weights_path, pair_weights="nonexistent.pt")
    assert Recognizer.load(recognizer.weights_path, pair_weights="").pair_backend is None


@pytest.mark.skipif(not DEFAULT_PAIR_WEIGHTS.is_file(), reason="no assets/pairs.pt")
def test_pair_reader_reads_touching_digits_the_cuts_miss(recognizer, mnist_test):
    """On numbers written with every digit touching the next, the shipped pair reader
    reads clearly more digits than straight cuts alone, without false readings."""
    assert recognizer.pair_backend is not None
    plain = Recognizer.load(recognizer.weights_path, pair_weights="")
    with_pairs, without = Counts(), Counts()
    for seed in range(200, 206):
        frame, truths, _ = render_scene(seed, SceneConfig.clean(touching_prob=1.0, group_prob=1.0), mnist_test)
        with_pairs += score_frame(recognizer.detect(frame), truths)
        without += score_frame(plain.detect(frame), truths)
    assert with_pairs.read_correctly >= without.read_correctly + 0.04, (with_pairs.read_correctly,
                                                                        without.read_correctly)
    assert with_pairs.precision >= 0.97


def test_pair_training_cli_writes_a_loadable_reader(mnist_dir: Path, tmp_path: Path, repo_root: Path,
                                                     recognizer, mnist_test) -> None:
    out = tmp_path / "pairs"
    res = subprocess.run([sys.executable, "-m", "training.pairs", "--data-dir", str(mnist_dir), "--samples", "400",
                          "--epochs", "1", "--workers", "1", "--widths", "4", "8", "8", "--out", str(out)],
                         cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "wrote" in res.stdout and (out / "model.pt").is_file()
    ckpt = read_checkpoint(out / "model.pt")
    # composed training pairs, for the int8 quantization the recognizer does at load
    assert ckpt["calibration"].dtype == torch.uint8 and tuple(ckpt["calibration"].shape) == (256, 28, 56)
    assert ckpt["calibration"].float().mean() > 5  # ink, not empty fields
    rec = Recognizer.load(recognizer.weights_path, pair_weights=out / "model.pt")
    assert rec.pair_backend.name == "onnxruntime int8"
    frame, _, _ = render_scene(0, SceneConfig.clean(touching_prob=1.0, group_prob=1.0), mnist_test)
    rec.detect(frame)  # the untrained reader runs end to end
    bad = subprocess.run([sys.executable, "-m", "training.pairs", "--data-dir", str(tmp_path / "none")],
                         cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


def _pair_crops(rec: Recognizer, mnist_test, seeds: range) -> list[np.ndarray]:
    """The pair reader's inputs on rendered touching numbers, one array per frame."""
    out = []
    for seed in seeds:
        frame, _, _ = render_scene(seed, SceneConfig.clean(touching_prob=1.0, group_prob=1.0), mnist_test)
        ink, cands = rec.candidates(frame)
        parts = [p for _, _, _, p in rec.pair_hypotheses(cands)]
        out.append((ink, parts))
    return out


@pytest.mark.skipif(not DEFAULT_PAIR_WEIGHTS.is_file(), reason="no assets/pairs.pt")
def test_calibrating_a_pair_checkpoint_makes_an_int8_reader_that_reads_like_float(
        recognizer, mnist_dir: Path, repo_root: Path, tmp_path: Path, mnist_test) -> None:
    """``training.calibrate`` on a pair reader stores composed pair fields; the int8
    reader built from them answers what the float reader does on real pair crops."""
    ckpt = read_checkpoint(DEFAULT_PAIR_WEIGHTS)
    ckpt.pop("calibration", None)
    path = save_checkpoint(ckpt, tmp_path / "pairs.pt")
    float_rec = Recognizer.load(recognizer.weights_path, pair_weights=path)
    assert float_rec.pair_backend.name == "onnxruntime"  # nothing to quantize from
    res = subprocess.run([sys.executable, "-m", "training.calibrate", str(path), "--data-dir", str(mnist_dir),
                          "--images", "128"], cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    calib = read_checkpoint(path)["calibration"]
    assert tuple(calib.shape) == (128, 28, 56) and calib.dtype == torch.uint8
    int8_rec = Recognizer.load(recognizer.weights_path, pair_weights=path)
    assert int8_rec.pair_backend.name == "onnxruntime int8"
    same = gate_same = total = 0
    for ink, parts in _pair_crops(float_rec, mnist_test, range(200, 204)):
        lf, rf, pf, _, df = float_rec.read_pairs(ink, parts)
        l8, r8, p8, _, d8 = int8_rec.read_pairs(ink, parts)
        same += int(((lf.argmax(1) == l8.argmax(1)) & (rf.argmax(1) == r8.argmax(1))).sum())
        total += len(parts)
        assert np.abs(pf - p8).max() < 0.3
        gate_same += int(((df < 0.5) == (d8 < 0.5)).sum())
    assert total >= 20 and same >= 0.9 * total and gate_same >= 0.95 * total, (same, gate_same, total)


def test_pair_calibration_must_be_pair_fields(tmp_path: Path) -> None:
    """A pair reader's calibration images are two fields wide; single-digit ones are
    refused at load with a one-line error (they would quantize a graph of another shape)."""
    from training.model import ModelConfig, build_model
    from training.checkpoint import load_checkpoint, make_checkpoint

    model = build_model(ModelConfig(arch="pairnet", widths=(4, 8, 8), num_classes=24))
    from training.pairs import PAIR_CLASS_NAMES

    ckpt = make_checkpoint(model, class_names=PAIR_CLASS_NAMES, calibration=torch.zeros(4, 28, 28, dtype=torch.uint8))
    path = save_checkpoint(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"uint8 \[N, 28, 56\]"):
        load_checkpoint(path)
    ckpt["calibration"] = torch.zeros(4, 28, 56, dtype=torch.uint8)
    load_checkpoint(save_checkpoint(ckpt, tmp_path / "good.pt"))


def test_blobs_read_whole_with_confidence_get_no_lattice(recognizer, mnist_test, monkeypatch) -> None:
    """Lattices and pair crops go only to the blobs the digit network is unsure of: on
    touching and separate digits that sends far fewer crops through the networks, and
    reads the same digits as offering every wide blob's lattice."""
    import realtime.recognizer as recognizer_module

    sizes: list[int] = []
    predict = recognizer.predict

    def counting(crops):
        sizes.append(len(crops))
        return predict(crops)

    monkeypatch.setattr(recognizer, "predict", counting)
    frames = [render_scene(seed, SceneConfig.clean(touching_prob=0.2, group_prob=0.8), mnist_test)[0]
              for seed in range(300, 306)]
    gated = [recognizer.detect(f) for f in frames]
    n_gated, sizes[:] = sum(sizes), []
    monkeypatch.setattr(recognizer_module, "SURE_WHOLE", 1.01)  # nothing is sure
    every = [recognizer.detect(f) for f in frames]
    n_every = sum(sizes)
    a = [(d.box, d.digit) for ds in gated for d in ds]
    b = [(d.box, d.digit) for ds in every for d in ds]
    assert n_gated < 0.8 * n_every, (n_gated, n_every)
    assert len(set(a) & set(b)) >= 0.97 * max(len(a), len(b)), (len(a), len(b), len(set(a) & set(b)))


def test_marks_are_as_soft_as_the_digits_they_are_told_from(mnist_test) -> None:
    """The pair reader must tell letters from digits by shape, not by sharpness. MNIST's
    20-px digits scaled up are soft; marks drawn at 80 px and scaled down were crisp, and
    a reader trained on them passed camera-soft letters as digits. Measured: the median
    share of grey (edge) pixels in the ink is 0.69 for marks and 0.78 for digits (0.46
    for marks without the pass through MNIST's resolution)."""
    images, labels = mnist_test
    rng = np.random.default_rng(0)
    grey: dict[int, list[float]] = {0: [], 1: []}
    while min(len(v) for v in grey.values()) < 150:
        s = make_sample(images[:500], labels[:500], rng)
        if s is None:
            continue
        ink = s[0][s[0] > 25]
        grey[s[6]].append(float((ink < 230).mean()))
    marks, digits = np.median(grey[0]), np.median(grey[1])
    assert marks >= 0.8 * digits, f"marks' ink is crisper than the digits': {marks:.2f} grey against {digits:.2f}"


def test_printed_letters_render_in_every_bundled_font() -> None:
    """Each font the printed-letter generator names ships with matplotlib and draws ink;
    none is one of OpenCV's Hershey fonts, which the benchmark's letters use."""
    from training.negatives import PRINTED_FONTS, _font, _printed

    assert not any("hershey" in name.lower() for name in PRINTED_FONTS)
    for name in PRINTED_FONTS:
        bbox = _font(name, 40).getbbox("nHk")
        assert bbox[2] - bbox[0] > 20 and bbox[3] - bbox[1] > 15, (name, bbox)
    rng = np.random.default_rng(1)
    marks = [_printed(rng) for _ in range(40)]
    assert all(m.dtype == np.float32 and m.max() > 0.9 and (m > 0.5).mean() > 0.02 for m in marks)
    # heavy and light: the stroke weight varies
    ink = sorted(float((m > 0.5).sum() / max(1, (m > 0.05).any(axis=1).sum()) ** 2) for m in marks)
    assert ink[-1] > 2 * ink[0]


def test_letters_the_pair_reader_calls_no_digits_are_not_split(recognizer, mnist_test, monkeypatch) -> None:
    """Words and wide letters (script n, u, H, M, w) that the cut lattice would read as
    chains of 1s, and the pair reader as two 1s, are not split when the pair reader says
    they are no digits; the digits among them are still read."""
    import realtime.recognizer as recognizer_module
    from benchmarks.scenes import render_sheet_with_distractors

    frames = [render_sheet_with_distractors(seed, kinds=("letters",), config=SceneConfig.clean(), digits=mnist_test)
              for seed in range(300, 304)]
    gated, open_ = Counts(), Counts()
    for frame, truths, _ in frames:
        gated += score_frame(recognizer.detect(frame), truths)
    monkeypatch.setattr(recognizer_module, "DIGITS_GATE", 0.0)
    monkeypatch.setattr(recognizer_module, "DIGITS_DROP", 0.0)
    for frame, truths, _ in frames:
        open_ += score_frame(recognizer.detect(frame), truths)
    false_gated, false_open = gated.detections - gated.matched, open_.detections - open_.matched
    assert false_open >= 20, "the sheets should hold letters the lattice misreads"
    assert false_gated <= 0.75 * false_open, (false_gated, false_open)
    assert gated.read_correctly >= open_.read_correctly - 0.01, (gated.read_correctly, open_.read_correctly)


def test_a_reader_without_the_digits_output_still_loads(recognizer, tmp_path: Path, mnist_test) -> None:
    """Pair readers trained before the "these are digits" output (23 outputs) load and
    read pairs; to them every blob is digits."""
    ckpt = read_checkpoint(DEFAULT_PAIR_WEIGHTS)
    ckpt["model_config"] = {**ckpt["model_config"], "num_classes": 23}
    ckpt["class_names"] = ckpt["class_names"][:23]
    ckpt["state_dict"] = {k: (v[:23] if k.startswith("head.2.") else v) for k, v in ckpt["state_dict"].items()}
    path = tmp_path / "old_pairs.pt"
    save_checkpoint(ckpt, path)
    old = Recognizer.load(recognizer.weights_path, pair_weights=path)
    frame, truths, _ = render_scene(301, SceneConfig.clean(touching_prob=1.0, group_prob=1.0), mnist_test)
    ink, cands = old.candidates(frame)
    parts = [p for _, _, _, p in old.pair_hypotheses(cands)]
    assert len(parts) >= 5 and (old.read_pairs(ink, parts)[4] == 1.0).all()
    assert score_frame(old.detect(frame), truths).read_correctly >= 0.7


def test_pair_training_device_option(capsys) -> None:
    """``--device`` takes cpu or cuda; cuda on a machine without an NVIDIA GPU is a clear
    usage error, not a traceback halfway through composing crops."""
    from training.pairs import parse_args

    assert parse_args(["--device", "cpu"]).device == "cpu"
    with pytest.raises(SystemExit) as err:
        parse_args(["--device", "tpu"])
    assert err.value.code == 2 and "expected cpu or cuda" in capsys.readouterr().err
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit) as err:
            parse_args(["--device", "cuda"])
        assert err.value.code == 2 and "no CUDA GPU" in capsys.readouterr().err
