"""The benchmark scripts run end to end on small rendered sets (the real CLIs, as
subprocesses) and report numbers that mean something."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(args: list[str], repo_root: Path, mnist_dir: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, MNIST_DIR=str(mnist_dir))
    env.pop("PHOTOS_DIR", None)  # the photos are checked elsewhere; keep these runs small
    return subprocess.run([sys.executable, "-m", *args], cwd=repo_root, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_accuracy_script_end_to_end(tmp_path: Path, repo_root: Path, mnist_dir: Path) -> None:
    out = tmp_path / "acc.json"
    r = _run(["benchmarks.accuracy", "--frames", "6", "--flicker-frames", "40", "--no-mnist", "--json", str(out)],
             repo_root, mnist_dir)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    res = json.loads(out.read_text())
    scenes, plain = res["scenes"], res["scenes_plain_resize"]
    assert res["set"]["frames"] == 6 and scenes["frames"] == 6
    o = scenes["overall"]
    assert o["true_digits"] >= 60  # ~25 digits a frame
    for key in ("recall", "precision", "label_accuracy", "read_correctly"):
        assert 0.0 <= o[key] <= 1.0
    # the pipeline works on these frames, and better than stretching the crops
    assert o["read_correctly"] >= 0.75, o
    assert o["read_correctly"] > plain["overall"]["read_correctly"]
    assert scenes["conditions"], "no per-condition breakdown"
    assert res["flicker"]["tracked"]["changes_per_100_frames_per_digit"] >= 0.0
    # the printed table carries the same headline numbers
    assert f"{100 * o['read_correctly']:6.2f}%".strip() in r.stdout


def test_speed_script_end_to_end(tmp_path: Path, repo_root: Path, mnist_dir: Path) -> None:
    out = tmp_path / "speed.json"
    r = _run(["benchmarks.speed", "--threads", "1", "--frames", "2", "--repeats", "1", "--sizes", "320x240",
              "--stages", "--ab", "1", "--json", str(out)], repo_root, mnist_dir)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    (row,) = res["pipeline"]
    assert row["size"] == "320x240" and row["batched"]["p50_ms"] > 0 and row["per_crop"]["p50_ms"] > 0
    assert row["batched"]["p99_ms"] >= row["batched"]["p50_ms"]
    # every stage of a frame is timed, and the stage times fit within the frame's
    (stages,) = res["stages"]
    assert list(stages["stages_p50_ms"]) == ["ink map", "sheet", "scale", "blobs", "split", "digit reader",
                                             "pair reader", "number reader", "choose"]
    assert stages["stages_p50_ms"]["digit reader"] > 0
    assert sum(stages["stages_p50_ms"].values()) <= 1.5 * stages["total_p50_ms"]
    # the interleaved A/B times the shipped pipeline against it without its optional readers
    (ab,) = res["ab"]
    assert set(ab["variants"]) == {"shipped", "no number reader", "no pair or number reader"}
    assert ab["variants"]["shipped"]["ratio_to_shipped_median"] == 1.0
    assert all(v["mean_ms_median"] > 0 for v in ab["variants"].values())
    assert "no pair or number reader" in r.stdout
    assert {(m["backend"], m["batch"]) for m in res["model"]} == {
        (b, n) for b in ("onnxruntime int8", "onnxruntime", "torch") for n in (1, 16, 256)}
    assert all(m["images_per_s"] > 0 for m in res["model"])


@pytest.mark.parametrize("args, needle", [
    (["benchmarks.accuracy", "--weights", "no_such.pt", "--frames", "1"], "checkpoint not found"),
    (["benchmarks.speed", "--sizes", "big"], "--sizes"),
])
def test_benchmark_bad_input_is_one_line(args: list[str], needle: str, repo_root: Path, mnist_dir: Path) -> None:
    r = _run(args, repo_root, mnist_dir)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and needle in r.stderr


def test_tuning_script_sweeps_a_constant_on_identical_frames(tmp_path: Path, repo_root: Path,
                                                             mnist_dir: Path) -> None:
    """The tuning sweep reads the same frames under each value: with every split and pair
    reading forbidden (split.split_min_conf above any confidence) touching chains lose digits."""
    out = tmp_path / "tune.json"
    r = _run(["benchmarks.tuning", "--quick", "--seq-weights", "", "--set", "split.split_min_conf=0.03,1.01",
              "--json", str(out)], repo_root, mnist_dir, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]
    shipped, unsplit = json.loads(out.read_text())["results"]
    assert shipped["setting"] == {"split.split_min_conf": "0.03"}
    assert unsplit["setting"] == {"split.split_min_conf": "1.01"}
    assert shipped["chains"]["true_digits"] == unsplit["chains"]["true_digits"] > 50
    assert shipped["chains"]["read_correctly"] >= 0.8
    assert unsplit["chains"]["read_correctly"] < shipped["chains"]["read_correctly"] - 0.1
    assert shipped["touching"]["true_digits"] > 0 and shipped["sheets"]["true_digits"] > 0
    assert "split.split_min_conf=1.01" in r.stdout
    bad = _run(["benchmarks.tuning", "--set", "split.no_such=1"], repo_root, mnist_dir)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "no_such" in bad.stderr
