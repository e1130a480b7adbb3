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

from benchmarks.scenes import SceneConfig, render_scene
from realtime.recognizer import Recognizer
from training.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from training.pairs import _next_to, make_sample
from training.fields import PAIR_WIDTH as WIDTH


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
