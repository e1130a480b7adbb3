"""The number reader: CTC likelihoods, readings per chain, composed numbers, training CLI,
and its effect on rendered touching numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.scenes import SceneConfig, render_scene
from realtime.recognizer import Recognizer
from training.fields import NUMBER_BLANK as BLANK
from training.fields import NUMBER_WIDTH as WIDTH
from training.checkpoint import CheckpointError, load_checkpoint, make_checkpoint, save_checkpoint
from training.sequences import greedy_readings, make_number


def test_greedy_readings_merge_repeats_and_drop_blanks() -> None:
    cols = [1, 1, BLANK, 1, 7, 7, BLANK, BLANK, 0]
    logits = np.full((1, len(cols), 11), -5.0)
    logits[0, np.arange(len(cols)), cols] = 5.0
    assert greedy_readings(logits) == ["1170"]


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


