"""Tests for the digit trainer (training.train), the ``python -m training`` CLI and
training.evaluate.

On synthetic digits (an MNIST-shaped folder of printed digits, no MNIST needed): a short
run learning them; the CLI end to end writing every run artifact (settings, metrics,
curves, resumable and final checkpoints, export, plots, final metrics) consistently; an
interrupt right after an epoch's summary line keeping that epoch's checkpoint, and
``resume`` finishing the run exactly as an uninterrupted run would; negatives giving an
11-class network; calibration added to an old checkpoint; every subcommand's ``--help``
naming each of its options, and the old entry points still working.

On MNIST (slow, ``-m slow``): a short run reaching 95% on 1,000 test images, and the
shipped ``assets/digits.pt`` scoring at least 99.6% on the full test set, also through
``python -m training evaluate``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.checkpoint import load_checkpoint, read_checkpoint
from training.data import load_mnist
from training.evaluate import evaluate_model
from training.graph import read_graph
from training.negatives import NOT_A_DIGIT, make_negatives
from training.train import METRIC_FIELDS, TrainSettings, run_training

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _cli(repo_root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=repo_root, capture_output=True, text=True,
        timeout=timeout, env=dict(os.environ),
    )


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """run_training sets torch's thread count for the process; give the next test its own."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _quick(data_dir: Path, out: Path, **kw) -> TrainSettings:
    """A small run: 15 steps per epoch on 1,000 images, evaluated on 300."""
    base = dict(data_dir=str(data_dir), out=str(out), epochs=2, batch_size=64, train_subset=1000,
                test_subset=300, threads=1, progress=False, seed=0)
    base.update(kw)
    return TrainSettings(**base)


def test_short_run_learns_synthetic_digits(synthetic_mnist_dir: Path, tmp_path: Path) -> None:
    final = run_training(_quick(synthetic_mnist_dir, tmp_path / "run", epochs=1, train_subset=3000, test_subset=500),
                         log_line=lambda s: None)
    assert final["metrics"]["test_accuracy"] >= 0.9, final["metrics"]["test_accuracy"]


@pytest.mark.slow
def test_short_training_run_learns_digits(mnist_dir: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    settings = TrainSettings(data_dir=str(mnist_dir), out=str(tmp_path / "run"), epochs=1, batch_size=64,
                             train_subset=20000, test_subset=1000, threads=1, progress=False, seed=0)
    final = run_training(settings, log_line=lines.append)
    m = final["metrics"]
    assert m["test_images"] == 1000
    assert m["test_accuracy"] >= 0.95, m["test_accuracy"]
    assert m["epochs"] == 1
    assert sum(1 for s in lines if s.startswith("epoch ")) == 1
    # the reported accuracy is the shipped weights' accuracy on exactly those images
    model, ckpt = load_checkpoint(tmp_path / "run" / "model.pt")
    images, labels = load_mnist("test", mnist_dir)
    norm = ckpt["normalization"]
    res = evaluate_model(model, images[:1000], labels[:1000], norm["mean"], norm["std"])
    assert res.accuracy == pytest.approx(m["test_accuracy"], abs=1e-6)


def test_cli_writes_every_artifact(synthetic_mnist_dir: Path, tmp_path: Path, repo_root: Path) -> None:
    mnist_dir = synthetic_mnist_dir
    out = tmp_path / "run"
    export = tmp_path / "exported.pt"
    proc = _cli(repo_root, "training", "digits", "--epochs", "2", "--train-subset", "2000", "--test-subset", "500",
                "--out", str(out), "--no-progress", "--export", str(export), "--data-dir", str(mnist_dir),
                "--threads", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert re.search(r"^epoch +1/2 ", proc.stdout, re.M) and re.search(r"^epoch +2/2 ", proc.stdout, re.M)
    assert "done: test accuracy" in proc.stdout

    settings = json.loads((out / "settings.json").read_text())
    assert settings["epochs"] == 2 and settings["train_subset"] == 2000 and settings["test_subset"] == 500
    assert settings["out"] == str(out) and settings["export"] == str(export)
    assert settings["progress"] is False and settings["threads"] == 1

    header, rows = _rows(out / "metrics.csv")
    assert header == METRIC_FIELDS
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for r in rows:
        assert all(r[k] != "" for k in METRIC_FIELDS)
        assert 0.0 <= float(r["test_acc"]) <= 1.0

    last = read_checkpoint(out / "last.pt")
    assert last["training_state"]["epoch"] == 2
    load_checkpoint(out / "last.pt")

    model, final = load_checkpoint(out / "model.pt")
    assert "training_state" not in final  # the shipped file carries no optimizer state
    calib = final["calibration"]  # training images for int8 inference, from the train split
    assert calib.dtype == torch.uint8 and tuple(calib.shape) == (256, 28, 28)
    train_x, _ = load_mnist("train", mnist_dir)
    assert any(torch.equal(calib[0], img) for img in train_x[:2000])
    exp_model, exported = load_checkpoint(export)
    for k, v in model.state_dict().items():
        assert torch.equal(v, exp_model.state_dict()[k])
    for ckpt in (final, exported):
        m = ckpt["metrics"]
        assert m["test_images"] == 500 and m["epochs"] == 2
        assert m["test_accuracy"] == pytest.approx(float(rows[-1]["test_acc"]), abs=1e-6)
        assert m["test_accuracy"] > 0.15  # 30 steps of 128: clearly above chance (10%), no more
        assert ckpt["settings"]["epochs"] == 2

    final_metrics = json.loads((out / "final_metrics.json").read_text())
    assert final_metrics["test_accuracy"] == pytest.approx(final["metrics"]["test_accuracy"])
    assert final_metrics["test_errors"] == round((1 - final_metrics["test_accuracy"]) * 500)
    assert len(final_metrics["per_class_accuracy"]) == 10

    assert final_metrics == final["metrics"] == json.loads(json.dumps(final["metrics"]))
    for name in ("curves.png", "confusion_matrix.png", "mistakes.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        assert len(data) > 1000, name
    # ready-to-run graphs beside both checkpoints, made from them
    for ckpt_path in (out / "model.pt", export):
        for name, precision in ((".onnx", "float32"), (".int8.onnx", "int8")):
            _, meta = read_graph(ckpt_path.with_suffix(name), "digits")
            assert meta["precision"] == precision and meta["source_name"] == ckpt_path.name
            assert meta["metrics"]["test_accuracy"] == pytest.approx(final["metrics"]["test_accuracy"])
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_interrupt_after_epoch_then_resume(synthetic_mnist_dir: Path, tmp_path: Path) -> None:
    mnist_dir = synthetic_mnist_dir
    run = tmp_path / "run"

    def interrupt_after_epoch_1(line: str) -> None:
        if line.startswith("epoch   1/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(_quick(mnist_dir, run), log_line=interrupt_after_epoch_1)

    # the epoch whose line was printed is safe on disk
    last = read_checkpoint(run / "last.pt")
    assert last["training_state"]["epoch"] == 1
    assert last["metrics"]["epochs"] == 1
    load_checkpoint(run / "last.pt")
    assert not (run / "model.pt").exists()
    _, rows_before = _rows(run / "metrics.csv")
    assert [int(r["epoch"]) for r in rows_before] == [1]

    lines: list[str] = []
    # only machine-local settings are given: the run's own (epochs, subsets, seed...) come from last.pt
    final = run_training(TrainSettings(data_dir=str(mnist_dir), out=str(run), resume=True, threads=1,
                                       progress=False), log_line=lines.append)
    assert any(s.startswith("resuming") and "after epoch 1/2" in s for s in lines), lines
    assert [s.split()[1] for s in lines if s.startswith("epoch ")] == ["2/2"]
    _, rows_after = _rows(run / "metrics.csv")
    assert [int(r["epoch"]) for r in rows_after] == [1, 2]
    assert rows_after[0] == rows_before[0]
    assert final["metrics"]["epochs"] == 2 and final["metrics"]["test_images"] == 300
    assert read_checkpoint(run / "last.pt")["training_state"]["epoch"] == 2

    # resuming restored model, optimizer, schedule, EMA and RNG: same weights as one straight run
    straight = run_training(_quick(mnist_dir, tmp_path / "straight"), log_line=lambda s: None)
    for k, v in final["state_dict"].items():
        diff = float((v.float() - straight["state_dict"][k].float()).abs().max()) if v.numel() else 0.0
        assert diff < 1e-5, f"{k} differs from the uninterrupted run by {diff}"
    assert final["metrics"]["test_accuracy"] == pytest.approx(straight["metrics"]["test_accuracy"], abs=0.005)


def test_training_with_negatives_gives_an_11_class_checkpoint(tmp_path: Path, synthetic_mnist_dir: Path) -> None:
    final = run_training(_quick(synthetic_mnist_dir, tmp_path, epochs=1, train_subset=4000, negatives=0.15),
                         log_line=lambda s: None)
    assert final["class_names"][-1] == NOT_A_DIGIT and len(final["class_names"]) == 11
    model, ckpt = load_checkpoint(tmp_path / "model.pt")
    assert model.config.num_classes == 11
    # it learned the new class: generated negatives it never saw are mostly called so
    neg = make_negatives(300, load_mnist("train", synthetic_mnist_dir)[0][:3000], seed=99)
    with torch.inference_mode():
        logits = model((neg.float().div(255).unsqueeze(1) - 0.1307) / 0.3081)
    assert float((logits.argmax(1) == 10).float().mean()) > 0.6
    assert final["metrics"]["test_accuracy"] > 0.85  # and digits are still digits


def test_calibrate_cli_adds_images_to_an_old_checkpoint(synthetic_mnist_dir: Path, tmp_path: Path,
                                                        repo_root: Path) -> None:
    from training.checkpoint import make_checkpoint, save_checkpoint
    from training.model import ModelConfig, build_model

    mnist_dir = synthetic_mnist_dir
    model = build_model(ModelConfig())
    path = save_checkpoint(make_checkpoint(model), tmp_path / "old.pt")
    assert "calibration" not in read_checkpoint(path)
    proc = _cli(repo_root, "training", "calibrate", str(path), "--data-dir", str(mnist_dir), "--images", "64")
    assert proc.returncode == 0, proc.stderr
    ckpt = read_checkpoint(path)
    assert tuple(ckpt["calibration"].shape) == (64, 28, 28)
    for k, v in model.state_dict().items():  # the weights are untouched
        assert torch.equal(v, ckpt["state_dict"][k])
    bad = _cli(repo_root, "training.calibrate", str(tmp_path / "missing.pt"), "--data-dir", str(mnist_dir))
    assert bad.returncode == 2 and "checkpoint not found" in bad.stderr and "Traceback" not in bad.stderr


COMMANDS = {"digits": "training.train", "pairs": "training.pairs", "numbers": "training.sequences",
            "calibrate": "training.calibrate", "evaluate": "training.evaluate", "export": "training.export"}
ALIASES = ("training.pairs", "training.sequences", "training.evaluate", "training.calibrate")


def _help(capsys: pytest.CaptureFixture[str], args: list[str], module: str = "training") -> tuple[int, str, str]:
    """``python -m MODULE ARGS`` run in this process (as ``runpy`` runs a ``-m`` module):
    ``(exit code, stdout, stderr)``."""
    import runpy
    import warnings

    argv = sys.argv
    sys.argv = [module, *args]
    try:
        with pytest.raises(SystemExit) as stop, warnings.catch_warnings():
            # runpy's note that the module was imported already (by this test session)
            warnings.simplefilter("ignore", RuntimeWarning)
            runpy.run_module(module, run_name="__main__", alter_sys=False)
    finally:
        sys.argv = argv
    out = capsys.readouterr()
    return int(stop.value.code or 0), out.out, out.err


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_subcommand_help_names_each_of_its_options(capsys, command: str) -> None:
    import importlib

    code, out, err = _help(capsys, [command, "--help"])
    assert code == 0, err
    assert out.startswith(f"usage: python -m training {command}")
    actions = importlib.import_module(COMMANDS[command]).parser()._actions
    options = [o for a in actions for o in a.option_strings if o.startswith("--")]
    options += [a.metavar or a.dest for a in actions if not a.option_strings]  # positionals
    assert len(options) >= 2, options
    missing = [o for o in options if o not in out]
    assert not missing, f"{command} --help does not mention {missing}"


def test_cli_help_lists_commands_and_the_digit_options(repo_root: Path, capsys) -> None:
    proc = _cli(repo_root, "training", "--help", timeout=120)  # the real entry point, once
    assert proc.returncode == 0, proc.stderr
    for command in COMMANDS:
        assert re.search(rf"^  {command} ", proc.stdout, re.M), command
    for opt in ("--data-dir", "--epochs", "--batch-size", "--seed", "--threads", "--out", "--resume",
                "--export", "--train-subset", "--test-subset", "--no-progress", "--download"):
        assert opt in proc.stdout, opt
    code, _, err = _help(capsys, ["fly"])
    assert code == 2 and "unknown command 'fly'" in err and "Traceback" not in err


def test_old_entry_points_still_work(synthetic_mnist_dir: Path, tmp_path: Path, repo_root: Path, capsys) -> None:
    """``python -m training --epochs ...`` (no command) is the digit trainer, and the
    modules' own entry points are the subcommands."""
    proc = _cli(repo_root, "training", "--epochs", "1", "--train-subset", "128", "--batch-size", "64",
                "--test-subset", "64", "--threads", "1", "--no-progress", "--data-dir", str(synthetic_mnist_dir),
                "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "done: test accuracy" in proc.stdout and (tmp_path / "run" / "model.pt").is_file()
    for alias in ALIASES:
        code, out, err = _help(capsys, ["--help"], alias)
        assert code == 0 and out.startswith(f"usage: python -m {alias}"), (alias, err)


@pytest.mark.slow
def test_shipped_checkpoint_accuracy(mnist_dir: Path, repo_root: Path) -> None:
    weights = repo_root / "assets" / "digits.pt"
    if not weights.is_file():
        pytest.skip(f"{weights} does not exist yet (train it with: python -m training --export assets/digits.pt)")
    model, ckpt = load_checkpoint(weights)
    images, labels = load_mnist("test", mnist_dir)
    assert len(labels) == 10000
    norm = ckpt["normalization"]
    res = evaluate_model(model, images, labels, norm["mean"], norm["std"])
    assert res.accuracy >= 0.996, res.accuracy

    proc = _cli(repo_root, "training", "evaluate", "--weights", str(weights), "--data-dir", str(mnist_dir),
                timeout=300)
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"test accuracy (\d+\.\d+)% \((\d+) errors of 10000\)", proc.stdout)
    assert m, proc.stdout
    assert float(m.group(1)) == pytest.approx(100 * res.accuracy, abs=0.006)
    assert int(m.group(2)) == int((res.predictions != res.labels).sum())
    per_class = [ln for ln in proc.stdout.splitlines() if ln.startswith("per-class accuracy:")]
    assert len(per_class) == 1
    assert re.findall(r"\b(\d):\d+\.\d+%", per_class[0]) == [str(d) for d in range(10)]


def test_training_never_imports_realtime(repo_root: Path) -> None:
    """Data flows one way: every training module imports without the live view's package."""
    code = ("import sys, pkgutil, importlib, training\n"
            "for m in pkgutil.iter_modules(training.__path__):\n"
            "    if m.name != '__main__': importlib.import_module('training.' + m.name)\n"
            "bad = sorted(n for n in sys.modules if n == 'realtime' or n.startswith('realtime.'))\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
