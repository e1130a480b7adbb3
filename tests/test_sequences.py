"""The number reader: CTC likelihoods, readings per chain, composed numbers, training CLI,
and its effect on rendered touching numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmarks.metrics import Counts, score_frame
from benchmarks.scenes import SceneConfig, render_scene
from realtime.recognizer import DEFAULT_PAIR_WEIGHTS, DEFAULT_SEQ_WEIGHTS, Recognizer
from realtime.segment import best_chain, chains_by_reading
from realtime import native
from realtime.sequences import BLANK, WIDTH, ctc_labels, ctc_log_likelihood, ctc_numpy, log_softmax, sequence_field
from training.checkpoint import CheckpointError, load_checkpoint, make_checkpoint, read_checkpoint, save_checkpoint
from training.sequences import greedy_readings, make_number
from tests.live_fixtures import *  # noqa: F403 - pytest fixtures


@pytest.mark.parametrize("reading", ["7", "12", "11", "9077", "55555", "1111111111111111"])
def test_ctc_log_likelihood_matches_torch(reading: str) -> None:
    rng = np.random.default_rng(len(reading))
    lp = log_softmax(rng.normal(size=(16, 11)) * 3)
    target = torch.tensor([[int(c) for c in reading]])
    ref = -F.ctc_loss(torch.tensor(lp)[:, None], target, torch.tensor([16]), torch.tensor([len(reading)]),
                      blank=BLANK, reduction="sum").item()
    got = ctc_log_likelihood(lp, reading)
    if np.isinf(ref):  # 16 ones need 31 columns (a blank between each two)
        assert got == -np.inf
    else:
        assert got == pytest.approx(ref, abs=1e-9)


@pytest.mark.skipif(not native.warm_up(), reason="numba not installed")
def test_compiled_ctc_matches_numpy() -> None:
    """The compiled kernel gives exactly the numpy route's likelihoods, for readings of
    every length at once (the empty one, repeats, one too long to fit)."""
    rng = np.random.default_rng(3)
    readings = ["", "0", "11", "100", "1234", "99999", "5" * 20] + [str(v) for v in rng.integers(0, 10**5, 40)]
    labels, lengths = ctc_labels(readings)
    for t in (1, 5, 32):
        lp = log_softmax(rng.normal(size=(t, 11)) * 4)
        want = ctc_numpy(lp, labels, lengths)
        got = native.compiled("ctc")(lp, labels, lengths)
        assert np.array_equal(got, want), (t, got, want)
        assert np.isinf(want[6]) and np.isfinite(want[0])
        for r, v in zip(readings, want):
            assert ctc_log_likelihood(lp, r) == v


def test_greedy_readings_merge_repeats_and_drop_blanks() -> None:
    cols = [1, 1, BLANK, 1, 7, 7, BLANK, BLANK, 0]
    logits = np.full((1, len(cols), 11), -5.0)
    logits[0, np.arange(len(cols)), cols] = 5.0
    assert greedy_readings(logits) == ["1170"]


def test_chains_by_reading_keeps_the_best_chain_per_reading() -> None:
    # points 0..3; single-digit segments and one pair stretch 0-2
    segs = [(0, 1, 0.9), (1, 2, 0.8), (2, 3, 0.9), (0, 2, 0.5), (1, 3, 0.3), (0, 2, 0.6, 2), (0, 3, 0.2)]
    spelled = ["1", "7", "4", "9", "1", "17", "8"]
    options = chains_by_reading(4, segs, spelled, min_conf=0.1, bonus=0.1)
    assert set(options) == {"174", "94", "11", "8"}
    # "174" is spelled two ways: 1|7|4 (0.9*0.8*0.9) and 17|4 (0.6*0.9, two bonuses)
    path, score = options["174"]
    assert path == [0, 1, 2]
    assert score == pytest.approx(np.log(0.9 * 0.8 * 0.9) + 0.3)
    best = max(options.values(), key=lambda v: v[1])
    assert best == best_chain(4, segs, min_conf=0.1, bonus=0.1)
    assert "8" not in chains_by_reading(4, segs, spelled, min_conf=0.25, bonus=0.1)


def test_sequence_field_fits_a_long_number_and_centres_a_short_one() -> None:
    ink = np.zeros((40, 400), np.uint8)
    ink[5:35, 10:390] = 255
    cols = np.flatnonzero(sequence_field(ink).max(axis=0) > 0.1)
    assert cols[0] >= 1 and cols[-1] <= WIDTH - 2
    small = np.zeros((40, 30), np.uint8)
    small[:, 10:20] = 255
    f = sequence_field(small)
    cols = np.flatnonzero(f.max(axis=0) > 0.1)
    rows = np.flatnonzero(f.max(axis=1) > 0.1)
    assert abs((cols[0] + cols[-1]) / 2 - WIDTH / 2) <= 1.5 and rows[-1] - rows[0] + 1 >= 19


def test_composed_numbers_are_consistent(mnist_test) -> None:
    images, labels = mnist_test
    rng = np.random.default_rng(0)
    widths: dict[int, list[int]] = {}
    for _ in range(300):
        s = make_number(images[:2000], labels[:2000], rng)
        if s is None:
            continue
        field, digits = s
        assert field.dtype == np.uint8 and field.shape == (28, WIDTH)
        assert 1 <= len(digits) <= 5 and all(0 <= d <= 9 for d in digits)
        cols = np.flatnonzero(field.max(axis=0) > 60)
        widths.setdefault(len(digits), []).append(int(cols[-1] - cols[0] + 1))
    # every length is drawn, and more digits make a wider number
    assert sorted(widths) == [1, 2, 3, 4, 5]
    means = [np.mean(widths[n]) for n in sorted(widths)]
    assert all(a < b for a, b in zip(means, means[1:])), means


def test_a_pair_reader_is_not_taken_for_a_number_reader(recognizer) -> None:
    if not DEFAULT_PAIR_WEIGHTS.is_file():
        pytest.skip("no assets/pairs.pt")
    with pytest.raises(CheckpointError, match="not a number reader"):
        Recognizer.load(recognizer.weights_path, seq_weights=DEFAULT_PAIR_WEIGHTS)
    with pytest.raises(CheckpointError, match="not found"):
        Recognizer.load(recognizer.weights_path, seq_weights="nonexistent.pt")
    assert Recognizer.load(recognizer.weights_path, seq_weights="").seq_backend is None


@pytest.mark.skipif(not DEFAULT_SEQ_WEIGHTS.is_file(), reason="no assets/sequences.pt")
def test_number_reader_reads_touching_numbers_better(recognizer, mnist_test) -> None:
    """On numbers written with every digit touching the next, the shipped number reader
    makes the live view read more digits right, without false readings."""
    assert recognizer.seq_backend is not None
    plain = Recognizer.load(recognizer.weights_path, seq_weights="")
    with_seq, without = Counts(), Counts()
    for seed in range(200, 212):
        frame, truths, _ = render_scene(seed, SceneConfig.clean(touching_prob=1.0, group_prob=1.0), mnist_test)
        with_seq += score_frame(recognizer.detect(frame), truths)
        without += score_frame(plain.detect(frame), truths)
    assert with_seq.correct > without.correct, (with_seq.correct, without.correct)
    assert with_seq.precision >= 0.97


def test_sequence_training_cli_writes_a_loadable_reader(mnist_dir: Path, tmp_path: Path, repo_root: Path,
                                                         recognizer, mnist_test) -> None:
    out = tmp_path / "seq"
    res = subprocess.run([sys.executable, "-m", "training.sequences", "--data-dir", str(mnist_dir), "--samples",
                          "300", "--epochs", "1", "--workers", "1", "--widths", "4", "8", "8", "--out", str(out)],
                         cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "wrote" in res.stdout and (out / "model.pt").is_file()
    rec = Recognizer.load(recognizer.weights_path, seq_weights=out / "model.pt")
    assert rec.seq_backend.name == "onnxruntime int8"  # the training numbers calibrate its convolutions
    frame, _, _ = render_scene(0, SceneConfig.clean(touching_prob=1.0, group_prob=1.0), mnist_test)
    rec.detect(frame)  # the untrained reader runs end to end
    bad = subprocess.run([sys.executable, "-m", "training.sequences", "--data-dir", str(tmp_path / "none")],
                         cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


def test_number_reader_calibration_must_be_number_fields(tmp_path: Path) -> None:
    """A number reader's calibration images are a whole number wide; others are refused at
    load with a one-line error (they would quantize a graph of another shape)."""
    from training.model import ModelConfig, build_model
    from training.sequences import SEQ_CLASS_NAMES

    model = build_model(ModelConfig(arch="seqnet", widths=(4, 8, 8), num_classes=11))
    ckpt = make_checkpoint(model, class_names=SEQ_CLASS_NAMES, calibration=torch.zeros(4, 28, 56, dtype=torch.uint8))
    with pytest.raises(CheckpointError, match=rf"uint8 \[N, 28, {WIDTH}\]"):
        load_checkpoint(save_checkpoint(ckpt, tmp_path / "bad.pt"))
    ckpt["calibration"] = torch.zeros(4, 28, WIDTH, dtype=torch.uint8)
    load_checkpoint(save_checkpoint(ckpt, tmp_path / "good.pt"))


@pytest.mark.skipif(not DEFAULT_SEQ_WEIGHTS.is_file(), reason="no assets/sequences.pt")
def test_calibrating_a_number_reader_makes_an_int8_reader_that_chooses_like_float(
        recognizer, mnist_dir: Path, repo_root: Path, tmp_path: Path, mnist_test) -> None:
    """``training.calibrate`` on a number reader stores composed numbers; the int8 reader
    built from them picks the same reading as the float one among each touching blob's
    chains."""
    from realtime.sequences import reading_scores

    ckpt = read_checkpoint(DEFAULT_SEQ_WEIGHTS)
    ckpt.pop("calibration", None)
    path = save_checkpoint(ckpt, tmp_path / "sequences.pt")
    float_rec = Recognizer.load(recognizer.weights_path, seq_weights=path)
    assert float_rec.seq_backend.name == "onnxruntime"
    res = subprocess.run([sys.executable, "-m", "training.calibrate", str(path), "--data-dir", str(mnist_dir),
                          "--images", "128"], cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    calib = read_checkpoint(path)["calibration"]
    assert tuple(calib.shape) == (128, 28, WIDTH) and calib.dtype == torch.uint8
    int8_rec = Recognizer.load(recognizer.weights_path, seq_weights=path)
    assert int8_rec.seq_backend.name == "onnxruntime int8"
    same = total = 0
    for seed in range(200, 204):
        frame, truths, _ = render_scene(seed, SceneConfig.clean(touching_prob=1.0, group_prob=1.0), mnist_test)
        ink, cands = float_rec.candidates(frame)
        wide = [c for c in cands if c.box[2] >= 1.2 * c.box[3]]
        # each blob's candidate readings: its true number's neighbours in digit space
        for blob, lf, l8 in zip(wide, float_rec.read_numbers(ink, wide), int8_rec.read_numbers(ink, wide)):
            options = [str(v) for v in range(100)] + [str(v) for v in range(100, 1000, 7)]
            sf, s8 = reading_scores(lf, options), reading_scores(l8, options)
            same += max(sf, key=sf.get) == max(s8, key=s8.get)
            total += 1
    assert total >= 15 and same >= 0.9 * total, (same, total)


@pytest.mark.skipif(not DEFAULT_SEQ_WEIGHTS.is_file(), reason="no assets/sequences.pt")
def test_number_reader_is_asked_only_where_readings_are_close(recognizer, mnist_test, monkeypatch) -> None:
    """Blobs whose best reading leads every other by SEQ_CONTEST are not sent to the number
    reader: fewer blobs go through it, and every digit read is the same as asking it
    about every blob it could judge."""
    import realtime.recognizer as recognizer_module

    asked: list[int] = []
    read_numbers = recognizer.read_numbers
    monkeypatch.setattr(recognizer, "read_numbers", lambda ink, blobs: asked.append(len(blobs)) or read_numbers(ink, blobs))
    frames = [render_scene(seed, SceneConfig(touching_prob=0.6, group_prob=0.9), mnist_test)[0] for seed in range(200, 208)]
    runs = {}
    for contest in (recognizer_module.SEQ_CONTEST, 1e9):
        monkeypatch.setattr(recognizer_module, "SEQ_CONTEST", contest)
        asked.clear()
        dets = [[(d.box, d.digit) for d in recognizer.detect(f)] for f in frames]
        runs[contest] = (sum(asked), dets)
    (few, dets_few), (every, dets_every) = runs.values()
    assert 0 < few < every, (few, every)
    assert dets_few == dets_every
