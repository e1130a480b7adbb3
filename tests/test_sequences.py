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
from realtime.sequences import BLANK, WIDTH, ctc_log_likelihood, log_softmax, sequence_field
from training.checkpoint import CheckpointError
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
    assert rec.seq_backend.name == "onnxruntime"
    frame, _, _ = render_scene(0, SceneConfig.clean(touching_prob=1.0, group_prob=1.0), mnist_test)
    rec.detect(frame)  # the untrained reader runs end to end
    bad = subprocess.run([sys.executable, "-m", "training.sequences", "--data-dir", str(tmp_path / "none")],
                         cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
