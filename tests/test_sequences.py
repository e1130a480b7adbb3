"""The number reader as training writes it, loaded by the live view (the trainer's own
tests are in test_train_readers.py, its composed numbers in test_synth.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.scenes import SceneConfig, render_scene
from realtime.recognizer import Recognizer


def test_sequence_training_cli_writes_a_loadable_reader(mnist_dir: Path, tmp_path: Path, repo_root: Path,
                                                         recognizer, mnist_test) -> None:
    out = tmp_path / "seq"
    res = subprocess.run([sys.executable, "-m", "training.sequences", "--data-dir", str(mnist_dir), "--samples",
                          "300", "--held-out", "200", "--epochs", "1", "--workers", "1", "--widths", "4", "8", "8",
                          "--out", str(out)], cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "wrote" in res.stdout and (out / "model.pt").is_file()
    rec = Recognizer.load(recognizer.weights_path, seq_weights=out / "model.pt")
    assert rec.seq_backend.name == "onnxruntime int8"  # the training numbers calibrate its convolutions
    frame, _, _ = render_scene(0, SceneConfig.clean(touching_prob=1.0, group_prob=1.0), mnist_test)
    rec.detect(frame)  # the untrained reader runs end to end
    bad = subprocess.run([sys.executable, "-m", "training.sequences", "--data-dir", str(tmp_path / "none")],
                         cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
