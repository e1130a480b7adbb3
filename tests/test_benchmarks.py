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


@pytest.fixture()
def tiny_real(tmp_path: Path, real_dir: Path) -> Path:
    """A few of the real photos laid out as ``$REAL_DIR`` is: two single digits, one
    sheet, one digit-free page (so the scripts' real-photo paths run in seconds)."""
    import shutil

    out = tmp_path / "real"
    for sub in ("digits", "sheets", "negatives"):
        (out / sub).mkdir(parents=True)
    rows = (real_dir / "digits" / "labels.csv").read_text().splitlines()
    (out / "digits" / "labels.csv").write_text("\n".join(rows[:3]) + "\n")
    for row in rows[1:3]:
        shutil.copy(real_dir / "digits" / row.split(",")[0], out / "digits")
    sheet = "tahaemara_3268.jpg"
    shutil.copy(real_dir / "sheets" / sheet, out / "sheets")
    (out / "sheets" / "rows.json").write_text(json.dumps({sheet: json.loads(
        (real_dir / "sheets" / "rows.json").read_text())[sheet]}))
    shutil.copy(real_dir / "negatives" / "huangzhenyu_bath_photo.jpg", out / "negatives")
    return out


def test_accuracy_real_world_conditions_and_real_photos(tmp_path: Path, repo_root: Path, mnist_dir: Path,
                                                        tiny_real: Path) -> None:
    out = tmp_path / "acc.json"
    conditions = ["pen skips", "close-up", "printed text"]
    r = _run(["benchmarks.accuracy", "--frames", "0", "--flicker-frames", "0", "--no-mnist", "--no-progress",
              "--conditions-frames", "1", "--conditions", *conditions, "--real-dir", str(tiny_real),
              "--json", str(out)], repo_root, mnist_dir)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert "scenes_plain_resize" not in res and res["scenes"]["frames"] == 0
    cs = res["conditions_set"]
    assert cs["seed"] == 2027 and list(cs["conditions"]) == conditions
    skips, close, text = (cs["conditions"][n] for n in conditions)
    assert skips["frames"] == 1 and skips["true_digits"] >= 10 and 0 <= skips["read_correctly"] <= 1
    assert close["frames"] == 3 and close["true_digits"] == 3  # one digit a frame, three times the frames
    assert text["true_digits"] == 0 and text["detections_per_frame"] >= 0
    assert text["target_met"] == (text["detections_per_frame"] <= 1)
    assert skips["target_met"] == (skips["read_correctly"] >= 0.95 and skips["precision"] >= 0.98)
    real = res["real"]
    assert real["digits"]["photos"] == 2 and real["sheets"]["sheets"] == 1 and real["negatives"]["pages"] == 1
    assert 0 <= real["digits"]["classify_share"] <= 1 and real["sheets"]["chars"] == 4
    # the printed tables: every condition with its target, the real photos, the targets
    for name in conditions:
        assert name in r.stdout
    assert "Targets (issue 21)" in r.stdout and "real upright sheets: row CER" in r.stdout
    assert "rendered reported set" not in r.stdout  # not measured, not claimed
    bad = _run(["benchmarks.accuracy", "--conditions", "no such"], repo_root, mnist_dir)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "no such" in bad.stderr


def test_speed_real_looking_frames(tmp_path: Path, repo_root: Path, mnist_dir: Path, tiny_real: Path) -> None:
    out = tmp_path / "speed.json"
    r = _run(["benchmarks.speed", "--no-pipeline", "--no-model", "--world", "--threads", "1", "--world-frames", "1",
              "--world-rounds", "2", "--world-sizes", "320x240", "--real-dir", str(tiny_real), "--no-progress",
              "--json", str(out)], repo_root, mnist_dir)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {row["set"]: row for row in json.loads(out.read_text())["world"]}
    assert set(rows) == {"real sheets", "real single digits", "real pages without digits", "real photos (all)",
                         "320x240 scenes", "320x240 desk", "320x240 text", "320x240 marks", "320x240 noise"}
    assert rows["real single digits"]["frames"] == 2 and rows["real photos (all)"]["frames"] == 4
    for name, row in rows.items():
        o = row["ours"]
        assert 0 < o["p50_ms"] <= o["p99_ms"] <= row["ours_max_ms"] + 1e-9, name
        if name == "real photos (all)":
            continue
        assert row["rounds"] == 2 and row["recipe"]["p50_ms"] > 0 and row["recipe_over_ours"] > 0
        stages = row["stages_p50_ms"]
        assert "ink map" in stages and sum(row["stages_mean_ms"].values()) <= 1.5 * o["mean_ms"], name
    # the recipe reads digit-sized contours: some on a page of digits, none in pure noise
    assert rows["320x240 scenes"]["recipe_calls_per_frame"] > 3
    assert "recipe/this" in r.stdout and "Targets (issue 22, 1 thread)" in r.stdout


def test_recipe_reads_digits_with_one_call_each(recognizer, mnist_test) -> None:
    """The OpenCV sample's recipe finds the digits of a clean page and reads most of them
    right through the same network, one call per contour: a working anchor, not a straw man."""
    from benchmarks.metrics import score_frame
    from benchmarks.scenes import SceneConfig, render_scene
    from benchmarks.speed import recipe_detect

    frame, truths, _ = render_scene(3, SceneConfig.clean(digit_px=(30, 50), n_digits=20), mnist_test)
    calls = []
    inner = recognizer.digit_reader.read_fields

    def counting(fields):
        calls.append(len(fields))
        return inner(fields)

    recognizer.digit_reader.read_fields = counting
    try:
        found = recipe_detect(recognizer, frame)
    finally:
        del recognizer.digit_reader.read_fields
    assert len(found) == len(calls) and set(calls) == {1}
    c = score_frame(found, truths)
    assert c.read_correctly >= 0.7 and c.precision >= 0.8, c
