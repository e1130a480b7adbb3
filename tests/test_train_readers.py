"""Tests for the pair and number reader trainers (training.pairs, training.sequences and
their shared loop, training.readers) on synthetic digits: no MNIST needed.

Covers: ``python -m training pairs`` writing the whole run folder (settings, metrics.csv,
curves, resumable last.pt, model.pt with its calibration fields, final metrics); an
interrupt after an epoch and ``--resume`` finishing with exactly the weights of an
uninterrupted run, for both readers; the CTC decoding; option checks.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from training import fields
from training.checkpoint import load_checkpoint, read_checkpoint
from training.graph import read_graph
from training.pairs import PAIR_CLASS_NAMES, PairSettings, train_pairs
from training.sequences import SEQ_CLASS_NAMES, SequenceSettings, greedy_readings, train_numbers

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = dict(samples=300, held_out=100, epochs=2, batch_size=64, widths=(4, 8, 8), workers=1, threads=1,
            progress=False)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """The trainers set torch's thread count for the process; give the next test its own."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_pair_training_cli_writes_the_run_folder(synthetic_mnist_dir: Path, tmp_path: Path, repo_root: Path) -> None:
    out = tmp_path / "pairs"
    proc = subprocess.run([sys.executable, "-m", "training", "pairs", "--data-dir", str(synthetic_mnist_dir),
                           "--samples", "300", "--held-out", "200", "--epochs", "2", "--workers", "1",
                           "--widths", "4", "8", "8", "--threads", "1", "--no-progress", "--out", str(out)],
                          cwd=repo_root, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert [ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("epoch ")] == ["1/2", "2/2"]
    assert f"wrote {out / 'model.pt'}" in proc.stdout.splitlines()[-1]

    settings = json.loads((out / "settings.json").read_text())
    assert settings["samples"] == 300 and settings["held_out"] == 200 and settings["widths"] == [4, 8, 8]
    header, rows = _rows(out / "metrics.csv")
    assert header[:2] == ["epoch", "train_loss"] and {"pair_read", "marks_rejected", "lr", "elapsed_s"} <= set(header)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(0.0 <= float(r["pair_read"]) <= 1.0 and float(r["train_loss"]) > 0 for r in rows)
    data = (out / "curves.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000

    assert read_checkpoint(out / "last.pt")["training_state"]["epoch"] == 2
    model, ckpt = load_checkpoint(out / "model.pt")
    assert "training_state" not in ckpt and ckpt["class_names"] == PAIR_CLASS_NAMES
    assert model.config.arch == "pairnet" and model.config.widths == (4, 8, 8)
    # composed training pairs, for the int8 quantization of the graph
    calib = ckpt["calibration"]
    assert calib.dtype == torch.uint8 and tuple(calib.shape) == (256, 28, fields.PAIR_WIDTH) and calib.float().mean() > 5
    m = ckpt["metrics"]
    assert m["epoch"] == 2 and m["held_out_pairs"] == 200 and m["pair_read"] == pytest.approx(float(rows[-1]["pair_read"]))
    assert json.loads((out / "final_metrics.json").read_text()) == m
    _, meta = read_graph(out / "model.int8.onnx", "pairs")  # and its ready-to-run graphs
    assert meta["class_names"] == PAIR_CLASS_NAMES and meta["input_shape"] == [28, fields.PAIR_WIDTH]
    assert read_graph(out / "model.onnx", "pairs")[1]["precision"] == "float32"
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("reader", ["pairs", "numbers"])
def test_interrupt_after_epoch_then_resume(reader: str, synthetic_mnist_dir: Path, tmp_path: Path) -> None:
    cls, train = (PairSettings, train_pairs) if reader == "pairs" else (SequenceSettings, train_numbers)

    def interrupt_after_epoch_1(line: str) -> None:
        if line.startswith("epoch   1/"):
            raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(cls(data_dir=str(synthetic_mnist_dir), out=str(run), **TINY), interrupt_after_epoch_1)
    assert read_checkpoint(run / "last.pt")["training_state"]["epoch"] == 1
    assert not (run / "model.pt").exists()
    _, before = _rows(run / "metrics.csv")

    lines: list[str] = []
    # only machine-local settings are given: the run's own come from last.pt
    final = train(cls(data_dir=str(synthetic_mnist_dir), out=str(run), resume=True, threads=1, workers=1,
                      progress=False), lines.append)
    assert any(s.startswith("resuming") and "after epoch 1/2" in s for s in lines), lines
    assert [s.split()[1] for s in lines if s.startswith("epoch ")] == ["2/2"]
    _, after = _rows(run / "metrics.csv")
    assert [int(r["epoch"]) for r in after] == [1, 2] and after[0] == before[0]

    straight = train(cls(data_dir=str(synthetic_mnist_dir), out=str(tmp_path / "straight"), **TINY), lambda s: None)
    for k, v in final["state_dict"].items():
        assert torch.equal(v, straight["state_dict"][k]), f"{k} differs from the uninterrupted run"
    assert final["class_names"] == (PAIR_CLASS_NAMES if reader == "pairs" else SEQ_CLASS_NAMES)


def test_greedy_readings_merge_repeats_and_drop_blanks() -> None:
    blank = fields.NUMBER_BLANK
    cols = [1, 1, blank, 1, 7, 7, blank, blank, 0]
    logits = np.full((1, len(cols), 11), -5.0)
    logits[0, np.arange(len(cols)), cols] = 5.0
    assert greedy_readings(logits) == ["1170"]


@pytest.mark.parametrize("module", ["training.pairs", "training.sequences"])
def test_reader_options_are_checked_before_any_work(module: str, capsys) -> None:
    """``--device`` takes cpu or cuda (cuda only where PyTorch sees a GPU); counts are
    positive; each a usage error, not a traceback halfway through composing."""
    import importlib

    parse_args = importlib.import_module(module).parse_args
    assert parse_args(["--device", "cpu"]).device == "cpu"
    bad = [["--device", "tpu"], ["--samples", "10"], ["--held-out", "0"], ["--lr", "nan"], ["--workers", "0"]]
    if not torch.cuda.is_available():
        bad.append(["--device", "cuda"])
    for args in bad:
        with pytest.raises(SystemExit) as err:
            parse_args(args)
        message = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.value.code == 2 and args[0] in message, (args, message)


def test_reader_cli_reports_missing_data_in_one_line(tmp_path: Path, capsys) -> None:
    from training.sequences import main

    assert main(["--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
