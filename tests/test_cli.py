"""End-to-end tests of ``python -m realtime``: the real CLI as subprocesses, on small
rendered inputs (and the real sheets and the demo clip), headless.

What is covered:

* image folders (rendered PNGs; the real sheets when ``$PHOTOS_DIR`` is set) and a short
  rendered video: exit 0, one JSON line per frame valid against the documented schema,
  digits read right against the renderer's truth, a recording with exactly the processed
  frame count at the source's size; ``--max-frames``; no display -> one notice, exit 0;
* SIGINT / SIGTERM mid-run: exit 130 / 143, the MP4 still opens and holds every frame
  that got a JSON line (or all but the last), every JSON line parses;
* bad input of every kind: exit 2, exactly one ``error:`` line naming what and where,
  never a traceback; invalid option values; ``--help`` lists every option;
* the demo clip: the README's main command on ``assets/demo.mp4``, and the recipe in
  ``assets/DEMO.md`` still renders that clip.

Every CLI start loads torch and the model (2-4 s on a busy 2-core machine), so inputs are
rendered once per module and the many bad-input runs go in parallel.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pytest
import torch

from benchmarks.metrics import Counts, score_frame
from benchmarks.scenes import SceneConfig, load_truth, render_frames, write_dataset
from cli_helpers import (
    DEMO_CONFIG,
    DEMO_FPS,
    DEMO_FRAMES,
    DEMO_SEED,
    REPO,
    check_records,
    describe,
    read_frames,
    read_jsonl,
    run_cli,
    start_cli,
    video_info,
    wait_for_lines,
)

NO_DISPLAY_NOTICE = "no display available"
# The rendered scenes are benign webcam views; the recognizer reads ~100% of them, so
# 80% leaves room for model/segmenter changes while failing when the pipeline breaks.
MIN_READ = 0.8

SMALL = dict(width=320, height=240, n_digits=10, digit_px=(24, 44), paper="white", lines="ruled",
             pen_px=0, desk=False, tilt=0.3, shadow=0.3, blur="none", lens_blur=0.5, noise=2.0,
             jpeg=90, brightness=1.0)
IMAGE_CONFIG = SceneConfig(ink="black", **SMALL)
VIDEO_CONFIG = SceneConfig(ink="blue", **SMALL)
SHORT_FRAMES = 15
LONG_FRAMES = 900  # ~10+ s of processing: far longer than the signal tests wait


# --------------------------------------------------------------------------- inputs


@dataclass
class Inputs:
    images: Path  # frame_0000.png ... + truth.json (a non-image the folder source must skip)
    image_truth: list[dict[str, Any]]
    short_video: Path
    short_truth: list[list[Any]]
    long_video: Path


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Inputs:
    from training.data import load_mnist

    images, labels = load_mnist("test", mnist_dir)
    digits = (images.numpy(), labels.numpy())
    root = tmp_path_factory.mktemp("cli_inputs")
    truth_json = write_dataset(root / "images", 3, seed=11, config=IMAGE_CONFIG, digits=digits)
    frames, truths = [], []
    for frame, frame_truths in render_frames(5, SHORT_FRAMES, VIDEO_CONFIG, motion="slow", digits=digits):
        frames.append(frame)
        truths.append(frame_truths)
    _write_video(root / "short.mp4", frames)
    # The long clip plays the short one forwards and backwards: smooth motion, no cost.
    loop = frames + frames[-2:0:-1]
    _write_video(root / "long.mp4", [loop[i % len(loop)] for i in range(LONG_FRAMES)])
    return Inputs(images=root / "images", image_truth=load_truth(truth_json),
                  short_video=root / "short.mp4", short_truth=truths, long_video=root / "long.mp4")


def _score(records: list[dict[str, Any]], truths: list[list[Any]]) -> Counts:
    assert len(records) == len(truths)
    return sum((score_frame(r["detections"], t) for r, t in zip(records, truths)), Counts())


def _assert_clean_success(proc: subprocess.CompletedProcess[str], *, headless_notice: int = 0) -> None:
    assert proc.returncode == 0, describe(proc)
    assert "Traceback" not in proc.stderr, describe(proc)
    assert "error:" not in proc.stderr, describe(proc)
    assert proc.stderr.count(NO_DISPLAY_NOTICE) == headless_notice, describe(proc)


# --------------------------------------------------------------------------- end to end


def test_image_folder(inputs: Inputs, tmp_path: Path) -> None:
    out_json, out_mp4 = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    proc = run_cli(["--source", inputs.images, "--no-display", "--json", out_json, "--record", out_mp4])
    _assert_clean_success(proc)

    names = [f["file"] for f in inputs.image_truth]
    records = read_jsonl(out_json)
    assert len(records) == len(names) == 3, "one JSON line per image; truth.json is not an image"
    check_records(records, sources=names, sizes=(320, 240))
    counts = _score(records, [f["digits"] for f in inputs.image_truth])
    assert counts.true_digits >= 15, counts  # the scenes really hold digits to read
    assert counts.read_correctly >= MIN_READ, counts.as_dict()

    n, w, h, fps = video_info(out_mp4)
    assert (n, w, h) == (3, 320, 240)
    assert fps == pytest.approx(2.0, rel=0.01)  # --image-fps default


def test_real_sheets(tmp_path: Path) -> None:
    photos = os.environ.get("PHOTOS_DIR")
    if not photos:
        pytest.skip("PHOTOS_DIR is not set")
    sheets = Path(photos).expanduser() / "sheets"
    labels = json.loads((sheets / "labels.json").read_text())
    names = sorted(p.name for p in sheets.glob("*.png"))
    assert names, f"no sheets in {sheets}"
    sizes = []
    for name in names:
        img = cv2.imread(str(sheets / name))
        sizes.append((img.shape[1], img.shape[0]))
    out_json, out_mp4 = tmp_path / "sheets.jsonl", tmp_path / "sheets.mp4"
    proc = run_cli(["--source", sheets, "--no-display", "--json", out_json, "--record", out_mp4])
    _assert_clean_success(proc)

    records = read_jsonl(out_json)
    check_records(records, sources=names, sizes=sizes)
    truths = [[{"box": d["box_xywh"], "label": d["label"]} for d in labels[name]["digits"]] for name in names]
    counts = _score(records, truths)
    assert counts.read_correctly >= MIN_READ, counts.as_dict()

    n, w, h, _ = video_info(out_mp4)
    assert (n, (w, h)) == (len(names), sizes[0])  # recorded at the first image's size


def test_video(inputs: Inputs, tmp_path: Path) -> None:
    out_json, out_mp4 = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    source = str(inputs.short_video)
    proc = run_cli(["--source", source, "--no-display", "--json", out_json, "--record", out_mp4])
    _assert_clean_success(proc)

    records = read_jsonl(out_json)
    assert len(records) == SHORT_FRAMES
    check_records(records, sources=source, sizes=(320, 240))
    counts = _score(records, inputs.short_truth)
    assert counts.true_digits >= 5 * SHORT_FRAMES, counts
    assert counts.read_correctly >= MIN_READ, counts.as_dict()
    assert any(r.get("numbers") for r in records), "numbers are part of every line"

    n, w, h, fps = video_info(out_mp4)
    assert (n, w, h) == (SHORT_FRAMES, 320, 240)
    assert fps == pytest.approx(30.0, rel=0.01)


def test_max_frames_and_no_display_notice(inputs: Inputs, tmp_path: Path) -> None:
    """Without --no-display and with no DISPLAY, the CLI says so once and runs headless."""
    out_json, out_mp4 = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    proc = run_cli(["--source", inputs.short_video, "--max-frames", "3", "--json", out_json, "--record", out_mp4])
    _assert_clean_success(proc, headless_notice=1)

    records = read_jsonl(out_json)
    assert [r["frame"] for r in records] == [0, 1, 2]
    check_records(records, sources=str(inputs.short_video), sizes=(320, 240))
    assert video_info(out_mp4)[:3] == (3, 320, 240)


# --------------------------------------------------------------------------- interruptions


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_finalizes_outputs(inputs: Inputs, tmp_path: Path, sig: signal.Signals) -> None:
    out_json, out_mp4 = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    source = str(inputs.long_video)
    proc = start_cli(["--source", source, "--no-display", "--no-progress", "--json", out_json, "--record", out_mp4])
    try:
        wait_for_lines(proc, out_json, 5)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    run = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert proc.returncode == 128 + sig, describe(run)  # 130 for SIGINT, 143 for SIGTERM
    assert f"stopped by signal {int(sig)}" in stderr, describe(run)
    assert "Traceback" not in stderr, describe(run)

    records = read_jsonl(out_json)  # every line parses, none is torn
    assert 5 <= len(records) < LONG_FRAMES, "the run was interrupted, not finished"
    check_records(records, sources=source, sizes=(320, 240))
    n, w, h, _ = video_info(out_mp4)  # the MP4 was finalized: it opens and decodes
    assert (w, h) == (320, 240)
    # A frame's JSON line is written just before its video frame, so the signal can fall
    # between the two: the video holds every frame, or all but the last.
    assert len(records) - 1 <= n <= len(records), (n, len(records))


# --------------------------------------------------------------------------- bad input


def _help_options() -> list[str]:
    """Every option string ``parse_args`` defines, taken from the parser it builds."""
    from realtime.__main__ import parse_args

    class Built(Exception):
        pass

    def spy(self: argparse.ArgumentParser, *a: Any, **k: Any) -> None:
        raise Built(self)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = spy  # type: ignore[method-assign]
    try:
        parse_args([])
    except Built as b:
        parser = b.args[0]
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    return [s for action in parser._actions for s in action.option_strings]


@dataclass
class BadPaths:
    root: Path
    tiny_png: Path  # a valid image, for cases where only another argument is wrong


def _bad_paths(root: Path) -> BadPaths:
    rng = np.random.default_rng(0)
    (root / "empty").mkdir()
    (root / "not_images").mkdir()
    (root / "not_images" / "notes.txt").write_text("no pictures here\n")
    (root / "not_images" / "data.json").write_text("{}\n")
    (root / "x.mp4").write_bytes(rng.integers(0, 256, 20000, dtype=np.uint8).tobytes())
    (root / "x.png").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (root / "corrupt.pt").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    torch.save({"a": 1}, root / "foreign.pt")
    tiny = root / "tiny.png"
    cv2.imwrite(str(tiny), np.full((48, 64, 3), 235, np.uint8))
    return BadPaths(root, tiny)


# name -> (arguments, strings the one error line must contain: what failed and where)
BAD_INPUTS: dict[str, Callable[[BadPaths], tuple[list[str], list[str]]]] = {
    "camera_index": lambda p: (["--source", "7"], ["camera 7"]),
    "missing_file": lambda p: (["--source", f"{p.root}/missing.mp4"], ["not found", f"{p.root}/missing.mp4"]),
    "missing_folder": lambda p: (["--source", f"{p.root}/no_such_dir"], [f"{p.root}/no_such_dir"]),
    "empty_folder": lambda p: (["--source", f"{p.root}/empty"], ["no images", f"{p.root}/empty"]),
    "non_image_folder": lambda p: (["--source", f"{p.root}/not_images"], ["no images", f"{p.root}/not_images"]),
    "glob_no_match": lambda p: (["--source", f"{p.root}/*.jpg"], ["glob", f"{p.root}/*.jpg"]),
    "corrupt_video": lambda p: (["--source", f"{p.root}/x.mp4"], ["video", f"{p.root}/x.mp4"]),
    "unreadable_image": lambda p: (["--source", f"{p.root}/x.png"], ["image", f"{p.root}/x.png"]),
    "missing_checkpoint": lambda p: (["--source", str(p.tiny_png), "--weights", "nope.pt"],
                                     ["checkpoint", "nope.pt"]),
    "corrupt_checkpoint": lambda p: (["--source", str(p.tiny_png), "--weights", f"{p.root}/corrupt.pt"],
                                     ["checkpoint", f"{p.root}/corrupt.pt"]),
    "foreign_checkpoint": lambda p: (["--source", str(p.tiny_png), "--weights", f"{p.root}/foreign.pt"],
                                     ["checkpoint", f"{p.root}/foreign.pt"]),
    "unwritable_record": lambda p: (["--source", str(p.tiny_png), "--record", "/nonexistent_dir/x.mp4"],
                                    ["video", "/nonexistent_dir/x.mp4"]),
    "unwritable_json": lambda p: (["--source", str(p.tiny_png), "--json", "/nonexistent_dir/x.jsonl"],
                                  ["/nonexistent_dir/x.jsonl"]),
}
# name -> (arguments, argparse's message)
BAD_OPTIONS: dict[str, tuple[list[str], str]] = {
    "min_confidence_2": (["--min-confidence", "2"], "--min-confidence must be between 0 and 1"),
    "max_frames_0": (["--max-frames", "0"], "--max-frames must be >= 1"),
}


@dataclass
class BadRuns:
    paths: BadPaths
    runs: dict[str, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory: pytest.TempPathFactory) -> BadRuns:
    """All bad-input runs (and --help), started side by side: each is mostly start-up."""
    paths = _bad_paths(tmp_path_factory.mktemp("bad_inputs"))
    jobs: dict[str, list[str]] = {name: make(paths)[0] + ["--no-display"] for name, make in BAD_INPUTS.items()}
    jobs.update({name: args + ["--no-display"] for name, (args, _) in BAD_OPTIONS.items()})
    jobs["help"] = ["--help"]
    with ThreadPoolExecutor(max_workers=max(2, min(6, os.cpu_count() or 2))) as pool:
        futures = {name: pool.submit(run_cli, args, timeout=180) for name, args in jobs.items()}
        return BadRuns(paths, {name: f.result() for name, f in futures.items()})


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input(case: str, bad_runs: BadRuns) -> None:
    if case == "camera_index" and Path("/dev/video7").exists():
        pytest.skip("this machine has a camera 7")
    if case == "missing_checkpoint":
        assert not (REPO / "nope.pt").exists()
    if case.startswith("unwritable"):
        assert not Path("/nonexistent_dir").exists()
    proc = bad_runs.runs[case]
    expected = BAD_INPUTS[case](bad_runs.paths)[1]
    assert proc.returncode == 2, describe(proc)
    assert "Traceback" not in proc.stderr, describe(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected exactly one stderr line\n{describe(proc)}"
    assert lines[0].startswith("error: "), describe(proc)
    for part in expected:
        assert part in lines[0], f"the error should name {part!r}\n{describe(proc)}"
    assert proc.stdout == "", describe(proc)


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_bad_option_value(case: str, bad_runs: BadRuns) -> None:
    proc = bad_runs.runs[case]
    message = BAD_OPTIONS[case][1]
    assert proc.returncode == 2, describe(proc)
    assert "Traceback" not in proc.stderr, describe(proc)
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("usage: python -m realtime"), describe(proc)
    assert lines[-1] == f"python -m realtime: error: {message}", describe(proc)


def test_help_lists_every_option(bad_runs: BadRuns) -> None:
    proc = bad_runs.runs["help"]
    assert proc.returncode == 0, describe(proc)
    options = _help_options()
    assert {"--source", "--weights", "--record", "--json", "--no-display", "--max-frames"} <= set(options)
    missing = [o for o in options if o not in proc.stdout]
    assert not missing, f"--help does not mention {missing}\n{proc.stdout}"


# --------------------------------------------------------------------------- demo clip

DEMO = REPO / "assets" / "demo.mp4"
DEMO_CHECK_FRAMES = 30


@pytest.fixture(scope="module")
def demo_render(mnist_dir: Path) -> list[tuple[np.ndarray, list[Any]]]:
    """The first frames of the demo, rendered again from the recipe in DEMO.md."""
    from training.data import load_mnist

    images, labels = load_mnist("test", mnist_dir)
    return list(render_frames(DEMO_SEED, DEMO_CHECK_FRAMES, SceneConfig(**DEMO_CONFIG), motion="slow",
                              fps=DEMO_FPS, digits=(images.numpy(), labels.numpy())))


def _demo_matches_recipe(render: list[tuple[np.ndarray, list[Any]]]) -> tuple[bool, str]:
    decoded = read_frames(DEMO, [0, DEMO_CHECK_FRAMES - 1])
    diffs = [float(np.abs(decoded[i].astype(np.float32) - render[i][0].astype(np.float32)).mean())
             for i in (0, DEMO_CHECK_FRAMES - 1)]
    # mp4v costs ~1-2 grey levels on average; another scene would differ by tens
    return max(diffs) < 6.0, f"mean abs difference of frames 0 and {DEMO_CHECK_FRAMES - 1}: {diffs}"


def test_demo_clip_matches_its_recipe(demo_render: list[tuple[np.ndarray, list[Any]]]) -> None:
    assert DEMO.is_file(), "assets/demo.mp4 is missing: render it as assets/DEMO.md says"
    n, w, h, fps = video_info(DEMO)
    assert (n, w, h) == (DEMO_FRAMES, DEMO_CONFIG["width"], DEMO_CONFIG["height"])
    assert fps == pytest.approx(DEMO_FPS, rel=0.01)
    assert DEMO.stat().st_size < 6_000_000
    doc = (REPO / "assets" / "DEMO.md").read_text()
    for key, value in DEMO_CONFIG.items():
        assert f"{key}={value!r}".replace("'", '"') in doc, f"DEMO.md's recipe lacks {key}={value!r}"
    assert f"seed={DEMO_SEED}" in doc and f"n_frames={DEMO_FRAMES}" in doc
    ok, detail = _demo_matches_recipe(demo_render)
    assert ok, f"assets/demo.mp4 no longer matches its recipe in DEMO.md (regenerate it): {detail}"


def test_demo_readme_command(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The README's main command shape on the demo clip, cut to 30 frames."""
    assert DEMO.is_file(), "assets/demo.mp4 is missing: render it as assets/DEMO.md says"
    out = tmp_path / "out"
    out.mkdir()  # the CLI does not create output folders
    out_json, out_mp4 = out / "demo.jsonl", out / "demo_annotated.mp4"
    proc = run_cli(["--source", "assets/demo.mp4", "--no-display", "--record", out_mp4, "--json", out_json,
                    "--max-frames", str(DEMO_CHECK_FRAMES)])
    _assert_clean_success(proc)
    records = read_jsonl(out_json)
    assert len(records) == DEMO_CHECK_FRAMES
    check_records(records, sources="assets/demo.mp4", sizes=(640, 480))
    assert video_info(out_mp4)[:3] == (DEMO_CHECK_FRAMES, 640, 480)
    # ~22 digits in view; the recognizer reads nearly all of them on every frame
    assert min(len(r["detections"]) for r in records) >= 15, [len(r["detections"]) for r in records]

    if os.environ.get("MNIST_DIR"):
        render = request.getfixturevalue("demo_render")
        ok, detail = _demo_matches_recipe(render)
        if ok:  # else test_demo_clip_matches_its_recipe reports it
            counts = _score(records, [truths for _, truths in render])
            assert counts.read_correctly >= 0.9, counts.as_dict()
