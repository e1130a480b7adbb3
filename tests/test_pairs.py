"""The pair reader as training writes it, loaded by the live view (the trainer's own
tests are in test_train_readers.py, its composed crops in test_synth.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from benchmarks.scenes import SceneConfig, render_scene
from realtime.recognizer import Recognizer
from training.checkpoint import read_checkpoint
from training.fields import PAIR_WIDTH


def test_pair_training_cli_writes_a_loadable_reader(mnist_dir: Path, tmp_path: Path, repo_root: Path,
                                                     recognizer, mnist_test) -> None:
    out = tmp_path / "pairs"
    res = subprocess.run([sys.executable, "-m", "training.pairs", "--data-dir", str(mnist_dir), "--samples", "400",
                          "--held-out", "200", "--epochs", "1", "--workers", "1", "--widths", "4", "8", "8",
                          "--out", str(out)], cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "wrote" in res.stdout and (out / "model.pt").is_file()
    ckpt = read_checkpoint(out / "model.pt")
    # composed training pairs, for the int8 quantization of the reader
    assert ckpt["calibration"].dtype == torch.uint8 and tuple(ckpt["calibration"].shape) == (256, 28, PAIR_WIDTH)
    assert ckpt["calibration"].float().mean() > 5  # ink, not empty fields
    rec = Recognizer.load(recognizer.weights_path, pair_weights=out / "model.pt")
    assert rec.pair_backend.name == "onnxruntime int8"
    frame, _, _ = render_scene(0, SceneConfig.clean(touching_prob=1.0, group_prob=1.0), mnist_test)
    rec.detect(frame)  # the untrained reader runs end to end
    bad = subprocess.run([sys.executable, "-m", "training.pairs", "--data-dir", str(tmp_path / "none")],
                         cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
