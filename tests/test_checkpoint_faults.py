"""Damaged, malformed and wrong-kind checkpoints, unusable resumes and output paths
(issue 23, items 5, 6, 7, 9 and 11's checkpoint messages): each refused up front with one
line per problem, never loaded, never a traceback, never after the work.

Runs on tiny networks and synthetic digits: no MNIST needed.
"""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from training.checkpoint import CheckpointError, load_checkpoint, make_checkpoint, read_checkpoint, save_checkpoint
from training.evaluate import main as evaluate_main
from training.model import ModelConfig, build_model
from training.runs import RunError
from training.train import TrainSettings, main as digits_main, run_training

UNWRITABLE = Path("/sys/kernel")  # a folder no one can create files in, root included


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(widths=(4, 8, 8))).eval()


def _good(tmp_path: Path) -> dict[str, Any]:
    return make_checkpoint(_model(), calibration=torch.zeros(8, 28, 28, dtype=torch.uint8),
                           metrics={"test_accuracy": 0.5}, settings={"epochs": 1})


def _flip_entry_byte(name_part: str) -> Callable[[Path], None]:
    """One byte flipped in the middle of an archive entry's data (as disk damage does)."""
    def damage(path: Path) -> None:
        data = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as z:
            info = max((i for i in z.infolist() if name_part in i.filename), key=lambda i: i.file_size)
        fn_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
        data[info.header_offset + 30 + fn_len + extra_len + info.file_size // 2] ^= 0x55
        path.write_bytes(bytes(data))
    return damage


def _first_weight(ckpt: dict[str, Any]) -> str:
    return next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point() and v.numel() > 4)


def _set_weight(value: float) -> Callable[[dict[str, Any]], None]:
    def change(ckpt: dict[str, Any]) -> None:
        ckpt["state_dict"][_first_weight(ckpt)].view(-1)[3] = value
    return change


def _put(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda ckpt: ckpt.__setitem__(key, value)


# name -> (change to the dict, or damage to the saved file; text the first line names)
MALFORMED: dict[str, tuple[Callable[[Any], None], str, bool]] = {
    # (change, needle, is a file damage)
    "weight_byte_flipped": (_flip_entry_byte("/data/"), "fails its checksum", True),
    "pickle_byte_flipped": (_flip_entry_byte("data.pkl"), "fails its checksum", True),
    "nan_weight": (_set_weight(math.nan), "NaN or infinite weights", False),
    "inf_weight": (_set_weight(math.inf), "NaN or infinite weights", False),
    "zero_std": (lambda c: c["normalization"].update(std=0.0), "std 0.0 is not a finite number > 0", False),
    "nan_mean": (lambda c: c["normalization"].update(mean=math.nan), "mean nan", False),
    "normalization_empty": (_put("normalization", {}), "normalization lacks 'mean'", False),
    "normalization_text": (_put("normalization", "mnist"), "normalization must be a dict", False),
    "box_over_size": (lambda c: c["normalization"].update(box=40), "box 40 is larger", False),
    "class_names_int": (_put("class_names", 10), "class_names must be a non-empty list of strings", False),
    "class_names_numbers": (_put("class_names", list(range(10))), "class_names must be", False),
    "class_names_count": (_put("class_names", ["0", "1"]), "2 class names for 10 outputs", False),
    "metrics_list": (_put("metrics", [0.5]), "metrics must be a dict", False),
    "settings_list": (_put("settings", ["epochs"]), "settings must be a dict", False),
    "state_dict_none": (_put("state_dict", None), "state_dict must be a non-empty dict", False),
    "state_dict_value": (lambda c: c["state_dict"].update({"head.bias": [0.0] * 10}), "not named dense tensors",
                         False),
    "state_dict_sparse": (lambda c: c["state_dict"].update({"head.bias": torch.zeros(10).to_sparse()}),
                          "not named dense tensors", False),
    "negative_width": (lambda c: c["model_config"].update(widths=[4, -8, 8]), "widths must be three positive", False),
    "config_text": (_put("model_config", "digitnet"), "model_config must be a dict", False),
    "unknown_arch": (lambda c: c["model_config"].update(arch="resnet"), "unknown architecture 'resnet'", False),
    "version_text": (_put("format_version", "1"), "format version '1' (str), this code reads version 1", False),
    "version_2": (_put("format_version", 2), "format version 2 (int), this code reads version 1", False),
    "kind_not_arch": (_put("kind", "pairs"), "kind 'pairs' but a digitnet network", False),
    "kind_unknown": (_put("kind", "letters"), "kind 'letters' is not one of", False),
    "calibration_shape": (_put("calibration", torch.zeros(4, 28, 56, dtype=torch.uint8)), "uint8 [N, 28, 28]", False),
    "training_state_epoch": (_put("training_state", {"epoch": 1.5, "rows": []}), "epoch 1.5 is not a whole number",
                             False),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_damaged_and_malformed_checkpoints_are_refused(case: str, tmp_path: Path) -> None:
    change, needle, on_file = MALFORMED[case]
    ckpt = _good(tmp_path)
    if not on_file:
        change(ckpt)
    path = tmp_path / "digits.pt"
    torch.save(ckpt, path)  # as given: no check on the way out
    if on_file:
        change(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's warnings must not reach the user either
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
    lines = str(err.value).splitlines()
    assert lines and all(line.startswith(f"{path}: ") for line in lines), lines
    assert needle in lines[0], lines


def test_every_problem_is_its_own_line(tmp_path: Path) -> None:
    ckpt = _good(tmp_path)
    ckpt["normalization"]["std"] = 0
    ckpt["metrics"] = []
    ckpt["class_names"] = 3
    path = save_checkpoint(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    lines = str(err.value).splitlines()
    assert len(lines) == 3 and {"std", "metrics", "class_names"} == {
        next(w for w in ("std", "metrics", "class_names") if w in line) for line in lines}, lines


def test_the_damage_the_sweep_found_is_refused_by_evaluate(tmp_path: Path, capsys) -> None:
    """A digits.pt with bytes flipped inside a weight tensor used to load (every digit a
    7, evaluate printing 10.28%): the archive's checksum refuses it, before any data loads."""
    path = save_checkpoint(_good(tmp_path), tmp_path / "digits.pt")
    _flip_entry_byte("/data/")(path)
    assert evaluate_main(["--weights", str(path), "--data-dir", str(tmp_path / "no-mnist")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}: damaged"), err


@pytest.mark.parametrize("stem,kind", [("digits", "pairs"), ("digits", "numbers"), ("pairs", "digits"),
                                       ("pairs", "numbers"), ("sequences", "digits"), ("sequences", "pairs")])
def test_a_checkpoint_of_another_kind_is_refused(repo_root: Path, stem: str, kind: str) -> None:
    path = repo_root / "assets" / f"{stem}.pt"
    found = {"digits": "digits", "pairs": "pairs", "sequences": "numbers"}[stem]
    with pytest.raises(CheckpointError, match=f"a {found} checkpoint .*, not a {kind} checkpoint"):
        load_checkpoint(path, kind)
    load_checkpoint(path, found)  # and its own kind loads


def test_evaluate_refuses_a_reader(repo_root: Path, capsys) -> None:
    """``training.evaluate --weights assets/pairs.pt`` printed 14.44% as if it were a digit network."""
    assert evaluate_main(["--weights", str(repo_root / "assets" / "pairs.pt")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "a pairs checkpoint (the pair reader), not a digits checkpoint" in err[0], err


def test_kind_is_stored_and_old_checkpoints_get_theirs_from_the_architecture(tmp_path: Path) -> None:
    ckpt = _good(tmp_path)
    assert ckpt["kind"] == "digits"
    del ckpt["kind"]  # as checkpoints written before kinds were stored
    path = save_checkpoint(ckpt, tmp_path / "old.pt")
    load_checkpoint(path, "digits")
    with pytest.raises(CheckpointError, match="not a pairs checkpoint"):
        load_checkpoint(path, "pairs")


def test_torch_warnings_never_precede_the_error_line(tmp_path: Path, repo_root: Path) -> None:
    ckpt = _good(tmp_path)
    ckpt["state_dict"]["head.bias"] = torch.zeros(10).to_sparse()  # torch warns while loading this
    path = tmp_path / "sparse.pt"
    torch.save(ckpt, path)
    proc = subprocess.run([sys.executable, "-m", "training", "evaluate", "--weights", str(path)], cwd=repo_root,
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and lines and lines[0].startswith("error: "), proc.stderr
    assert "Warning" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------- resume


def _tiny(data_dir: Path, out: Path, **kw: Any) -> TrainSettings:
    base = dict(data_dir=str(data_dir), out=str(out), epochs=2, batch_size=32, train_subset=64, test_subset=32,
                widths=(4, 8, 8), threads=1, progress=False)
    base.update(kw)
    return TrainSettings(**base)


@pytest.fixture(scope="module")
def interrupted_run(synthetic_mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """last.pt of a 2-epoch digit run stopped after its first epoch."""
    out = tmp_path_factory.mktemp("interrupted")

    def stop(line: str) -> None:
        if line.startswith("epoch   1/"):
            raise KeyboardInterrupt

    threads = torch.get_num_threads()
    with pytest.raises(KeyboardInterrupt):
        run_training(_tiny(synthetic_mnist_dir, out), log_line=stop)
    torch.set_num_threads(threads)
    return out / "last.pt"


# name -> (change to last.pt's dict, text the first error line names)
BAD_RESUMES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unknown_setting": (lambda c: c["settings"].update(colour="blue"), "'colour' is not one this version knows"),
    "changed_widths": (lambda c: c["settings"].update(widths=[8, 16, 32]), "widths [8, 16, 32] are not its network's"),
    "empty_settings": (lambda c: c.__setitem__("settings", {}), "settings are empty"),
    "setting_type": (lambda c: c["settings"].update(lr="fast"), "settings 'lr' is 'fast'"),
    "setting_nan_lr": (lambda c: c["settings"].update(lr=math.nan), "--lr must be a finite number > 0"),
    "no_optimizer": (lambda c: c["training_state"].pop("optimizer"), "training_state lacks 'optimizer'"),
    "not_an_optimizer": (lambda c: c["training_state"].update(optimizer={"lr": 1}), "not an optimizer's state"),
    "no_ema": (lambda c: c["training_state"].pop("ema"), "training_state lacks 'ema'"),
    "epoch_float": (lambda c: c["training_state"].update(epoch=1.0), "epoch 1.0 is not a whole number"),
    "epoch_text": (lambda c: c["training_state"].update(epoch="1"), "epoch '1' is not a whole number"),
    "epoch_past_end": (lambda c: c["training_state"].update(epoch=5, rows=c["training_state"]["rows"] * 5),
                       "epoch 5 is past the run's 2 epochs"),
    "rows_missing": (lambda c: c["training_state"].update(rows=[]), "0 metric rows for 1 epochs"),
    "state_of_another_net": (lambda c: c["training_state"].update(
        model={k: torch.zeros(3) for k in c["training_state"]["model"]}), "does not fit this run"),
    "no_training_state": (lambda c: c.pop("training_state"), "holds no training state"),
    "kind": (lambda c: c.__setitem__("kind", "numbers"), "kind 'numbers' but a digitnet"),
}


@pytest.mark.parametrize("case", list(BAD_RESUMES))
def test_a_run_that_cannot_be_resumed_is_refused(case: str, interrupted_run: Path, synthetic_mnist_dir: Path,
                                                 tmp_path: Path) -> None:
    change, needle = BAD_RESUMES[case]
    ckpt = read_checkpoint(interrupted_run)
    change(ckpt)
    out = tmp_path / "run"
    out.mkdir()
    torch.save(ckpt, out / "last.pt")
    threads = torch.get_num_threads()
    try:
        with pytest.raises((CheckpointError, RunError)) as err:
            run_training(TrainSettings(data_dir=str(synthetic_mnist_dir), out=str(out), resume=True, threads=1,
                                       progress=False), log_line=lambda s: None)
    finally:
        torch.set_num_threads(threads)
    lines = str(err.value).splitlines()
    assert needle in lines[0], lines
    assert not (out / "model.pt").exists()


def test_resume_refusal_through_the_cli_is_one_line(interrupted_run: Path, synthetic_mnist_dir: Path,
                                                    tmp_path: Path, capsys) -> None:
    ckpt = read_checkpoint(interrupted_run)
    ckpt["settings"]["colour"] = "blue"
    (tmp_path / "run").mkdir()
    torch.save(ckpt, tmp_path / "run" / "last.pt")
    code = digits_main(["--resume", "--out", str(tmp_path / "run"), "--data-dir", str(synthetic_mnist_dir)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and "'colour'" in err[0], err


# ---------------------------------------------------------------------------- outputs and options


def test_output_paths_are_checked_before_any_work(tmp_path: Path, synthetic_mnist_dir: Path, capsys) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    cases = [(["--out", str(a_file)], "is a file, not a folder"),
             (["--out", str(a_file / "run")], "is a file, not a folder"),
             (["--out", str(tmp_path / "run"), "--export", str(tmp_path)], "is a folder, not a checkpoint")]
    if UNWRITABLE.is_dir():
        cases += [(["--out", str(UNWRITABLE / "run")], "cannot write there"),
                  (["--out", str(tmp_path / "run"), "--export", str(UNWRITABLE / "digits.pt")], "cannot write there")]
    for args, needle in cases:
        code = digits_main([*args, "--data-dir", str(synthetic_mnist_dir), "--epochs", "1", "--no-progress"])
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (args, err)
        assert "epoch" not in out  # refused before the first epoch
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not UNWRITABLE.is_dir(), reason="no unwritable folder to point at")
def test_evaluate_checks_its_plot_folder_before_evaluating(repo_root: Path, capsys) -> None:
    code = evaluate_main(["--weights", str(repo_root / "assets" / "digits.pt"), "--out", str(UNWRITABLE / "eval")])
    out, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: --out") and "cannot write there" in err and "accuracy" not in out


@pytest.mark.parametrize("args,needle", [
    (["--train-subset", "0"], "--train-subset must be >= 1"),
    (["--test-subset", "0"], "--test-subset must be >= 1"),
    (["--train-subset", "100", "--batch-size", "128"], "--batch-size 128 is larger than --train-subset 100"),
    (["--lr", "nan"], "--lr must be a finite number > 0"),
    (["--lr", "inf"], "--lr must be a finite number > 0"),
    (["--lr", "0"], "--lr must be a finite number > 0"),
    (["--batch-size", "1"], "--batch-size must be >= 2"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--negatives", "1.5"], "--negatives must be a number in [0, 1)"),
    (["--ema-decay", "nan"], "--ema-decay must be a number"),
    (["--widths", "4", "0", "8"], "--widths must be positive"),
    (["--accumulate", "3"], "--accumulate must be >= 1 and divide --batch-size 128"),
    (["--accumulate", "0"], "--accumulate must be >= 1"),
])
def test_options_that_make_no_training_are_refused(args: list[str], needle: str, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        digits_main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and needle in err[-1], err
    assert err[0].startswith("usage: ")


def test_a_batch_larger_than_the_whole_set_is_refused(tmp_path: Path, synthetic_mnist_dir: Path) -> None:
    with pytest.raises(RunError, match="--batch-size 70000 is larger than the 60000 training images"):
        run_training(_tiny(synthetic_mnist_dir, tmp_path / "run", train_subset=None, batch_size=70000),
                     log_line=lambda s: None)


def test_settings_given_to_the_api_are_checked_too(tmp_path: Path, synthetic_mnist_dir: Path) -> None:
    with pytest.raises(RunError, match="--lr must be a finite number > 0, not nan"):
        run_training(_tiny(synthetic_mnist_dir, tmp_path / "run", lr=math.nan), log_line=lambda s: None)


def test_temp_files_a_killed_save_left_are_removed_on_the_next_start(tmp_path: Path,
                                                                     synthetic_mnist_dir: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    strays = [out / ".last.pt.k1l2.tmp", out / ".model.pt.abc.tmp", out / ".model.int8.onnx.x.tmp",
              tmp_path / ".exported.pt.zz.tmp"]
    for s in strays:
        s.write_bytes(b"half a checkpoint")
    keep = out / "notes.tmp"  # not ours
    keep.write_text("mine")
    threads = torch.get_num_threads()
    try:
        run_training(_tiny(synthetic_mnist_dir, out, epochs=1, export=str(tmp_path / "exported.pt")),
                     log_line=lambda s: None)
    finally:
        torch.set_num_threads(threads)
    assert not any(s.exists() for s in strays) and keep.exists()
    assert not list(out.glob(".*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_a_reader_run_does_not_resume_another_networks_run(interrupted_run: Path, tmp_path: Path) -> None:
    from training.sequences import SequenceSettings, train_numbers

    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(interrupted_run.read_bytes())
    with pytest.raises(CheckpointError, match="a digits checkpoint .*, not a numbers checkpoint"):
        train_numbers(SequenceSettings(out=str(out), resume=True, progress=False), lambda s: None)
