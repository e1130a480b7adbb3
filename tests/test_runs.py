"""Tests for training.runs, the run folder every trainer shares: stored settings checked
and merged on resume, the metrics CSV, the curves plot."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from training.pairs import PairSettings
from training.runs import (Curves, RunError, plot_curves, resumed_settings, settings_dict, settings_problems,
                           write_metrics)
from training.train import LOCAL_SETTINGS, TrainSettings


def test_settings_round_trip_through_their_stored_form() -> None:
    s = TrainSettings(widths=(8, 16, 32), lr=0.05, train_subset=100)
    stored = settings_dict(s)
    assert stored["widths"] == [8, 16, 32] and settings_problems(TrainSettings, stored) == []
    given = TrainSettings(threads=7, data_dir="/elsewhere", epochs=99, progress=False)
    merged = resumed_settings(TrainSettings, stored, given, LOCAL_SETTINGS)
    # the run's own settings win; only where it runs comes from the new command
    assert merged.widths == (8, 16, 32) and merged.lr == 0.05 and merged.epochs == s.epochs
    assert merged.threads == 7 and merged.data_dir == "/elsewhere" and merged.progress is False and merged.resume


@pytest.mark.parametrize("change,needle", [
    (lambda d: d.update(colour="blue"), "'colour' is not one this version knows"),
    (lambda d: d.clear(), "settings are empty"),
    (lambda d: d.update(widths=[8, 16]), "'widths'"),
    (lambda d: d.update(epochs="3"), "'epochs'"),
    (lambda d: d.update(epochs=2.5), "'epochs'"),
    (lambda d: d.update(progress=1), "'progress'"),
    (lambda d: d.update(lr=None), "'lr'"),
])
def test_stored_settings_that_this_version_cannot_resume_are_refused(change, needle: str) -> None:
    stored = settings_dict(PairSettings())
    change(stored)
    problems = settings_problems(PairSettings, stored)
    assert any(needle in p for p in problems), problems
    with pytest.raises(RunError, match="cannot resume"):
        resumed_settings(PairSettings, stored, PairSettings(), ())


def test_metrics_csv_keeps_the_first_rows_columns_in_order(tmp_path: Path) -> None:
    rows = [{"epoch": 1, "train_loss": 0.5, "score": 0.25}, {"epoch": 2, "train_loss": 0.25, "score": 0.5}]
    path = tmp_path / "metrics.csv"
    write_metrics(path, rows)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["epoch", "train_loss", "score"]
        assert [float(r["score"]) for r in reader] == [0.25, 0.5]
    out = plot_curves(path, tmp_path / "curves.png", Curves(loss=("train_loss",), score=("score",)))
    assert out.read_bytes().startswith(b"\x89PNG") and out.stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "metrics.csv"]  # no temp files left
