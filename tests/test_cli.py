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
import csv
import json
import os
import re
import resource
import signal
import socket
import subprocess
import threading
import time
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
    timed_cli,
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


CLOSING = re.compile(r"^(\d+) frames? read(; | \(nothing saved)")


def _assert_clean_success(proc: subprocess.CompletedProcess[str], *, headless_notice: int = 0,
                          frames: int | None = None) -> str:
    """Exit 0, no traceback or error, and a closing line that says where results went
    (returned)."""
    assert proc.returncode == 0, describe(proc)
    assert "Traceback" not in proc.stderr, describe(proc)
    assert "error:" not in proc.stderr, describe(proc)
    assert proc.stderr.count(NO_DISPLAY_NOTICE) == headless_notice, describe(proc)
    closing = [line for line in proc.stderr.replace("\r", "\n").splitlines() if CLOSING.match(line)]
    assert len(closing) == 1, f"no closing line\n{describe(proc)}"
    if frames is not None:
        assert int(CLOSING.match(closing[0]).group(1)) == frames, closing[0]
    return closing[0]


# --------------------------------------------------------------------------- end to end


def test_image_folder(inputs: Inputs, tmp_path: Path) -> None:
    out_json, out_mp4, out_csv = tmp_path / "out.jsonl", tmp_path / "out.mp4", tmp_path / "out.csv"
    proc = run_cli(["--source", inputs.images, "--no-display", "--json", out_json, "--record", out_mp4,
                    "--csv", out_csv])
    closing = _assert_clean_success(proc, frames=3)
    for path in (out_json, out_mp4, out_csv):
        assert str(path) in closing, closing

    names = [f["file"] for f in inputs.image_truth]
    records = read_jsonl(out_json)
    rows = list(csv.DictReader(out_csv.open()))
    assert [(int(r["frame"]), r["value"], [int(r[k]) for k in "xywh"]) for r in rows] == [
        (rec["frame"], n["value"], n["box"]) for rec in records for n in rec["numbers"]]
    assert {r["t"] for r in rows} <= {f"{rec['t']:.3f}" for rec in records}
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
    assert [r["t"] for r in records] == pytest.approx([i / 30.0 for i in range(SHORT_FRAMES)], abs=1e-3)
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


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_finalizes_outputs(inputs: Inputs, tmp_path: Path, sig: signal.Signals) -> None:
    """Ctrl-C, a kill, a closed terminal: exit 128 + signal, and the video holds exactly
    the frames the JSON lines describe (a frame's outputs are written together)."""
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
    assert n == len(records), f"{n} video frames, {len(records)} JSON lines"
    assert any(CLOSING.match(line) for line in stderr.replace("\r", "\n").splitlines()), describe(run)


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
    video: Path  # a valid short video


def _png_with_bad_crc(path: Path) -> None:
    ok, data = cv2.imencode(".png", np.random.default_rng(1).integers(0, 255, (40, 50, 3), dtype=np.uint8))
    raw = bytearray(data.tobytes())
    raw[150] ^= 0xFF  # inside the image data: libpng prints "libpng error: IDAT: CRC error" itself
    path.write_bytes(bytes(raw))


def _bad_paths(root: Path) -> BadPaths:
    rng = np.random.default_rng(0)
    (root / "empty").mkdir()
    (root / "not_images").mkdir()
    (root / "not_images" / "notes.txt").write_text("no pictures here\n")
    (root / "not_images" / "data.json").write_text("{}\n")
    (root / "x.mp4").write_bytes(rng.integers(0, 256, 20000, dtype=np.uint8).tobytes())
    (root / "x.png").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _png_with_bad_crc(root / "crc.png")
    (root / "corrupt.pt").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    torch.save({"a": 1}, root / "foreign.pt")
    tiny = root / "tiny.png"
    cv2.imwrite(str(tiny), np.full((48, 64, 3), 235, np.uint8))
    (root / "tiny_link.png").symlink_to(tiny)
    (root / "pages").mkdir()
    for name in ("a.png", "b.png"):
        (root / "pages" / name).write_bytes(tiny.read_bytes())
    video = root / "ok.mp4"
    _write_video(video, [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(5)])
    os.mkfifo(root / "feed.mp4")
    return BadPaths(root, tiny, video)


def _unchanged(paths: BadPaths) -> dict[str, bytes]:
    files = [paths.tiny_png, paths.video, *sorted((paths.root / "pages").iterdir())]
    return {str(p): p.read_bytes() for p in files}


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
    # libpng's own line must not come first (or at all): its words are in the one error
    "png_bad_crc": lambda p: (["--source", f"{p.root}/crc.png"], ["image", f"{p.root}/crc.png", "libpng error"]),
    "fifo": lambda p: (["--source", f"{p.root}/feed.mp4"], ["named pipe", f"{p.root}/feed.mp4"]),
    "missing_checkpoint": lambda p: (["--source", str(p.tiny_png), "--weights", "nope.pt"],
                                     ["checkpoint", "nope.pt"]),
    "corrupt_checkpoint": lambda p: (["--source", str(p.tiny_png), "--weights", f"{p.root}/corrupt.pt"],
                                     ["checkpoint", f"{p.root}/corrupt.pt"]),
    "foreign_checkpoint": lambda p: (["--source", str(p.tiny_png), "--weights", f"{p.root}/foreign.pt"],
                                     ["checkpoint", f"{p.root}/foreign.pt"]),
    # output folders are created, so an unwritable one is one whose path runs through a file
    "unwritable_record": lambda p: (["--source", str(p.tiny_png), "--record", f"{p.tiny_png}/sub/x.mp4"],
                                    ["folder", f"{p.tiny_png}/sub/x.mp4"]),
    "unwritable_json": lambda p: (["--source", str(p.tiny_png), "--json", f"{p.tiny_png}/x.jsonl"],
                                  [f"{p.tiny_png}/x.jsonl"]),
    "record_is_folder": lambda p: (["--source", str(p.tiny_png), "--record", f"{p.root}/empty"],
                                   [f"{p.root}/empty"]),
    # an output that is an input (or another output) is refused before anything is written
    "record_is_source": lambda p: (["--source", str(p.video), "--record", str(p.video)],
                                   ["--record", "is an input", str(p.video)]),
    "json_is_source": lambda p: (["--source", str(p.tiny_png), "--json", str(p.tiny_png)],
                                 ["--json", "is an input"]),
    "json_is_source_by_link": lambda p: (["--source", str(p.tiny_png), "--json", f"{p.root}/tiny_link.png"],
                                         ["--json", "is an input"]),
    "csv_is_folder_image": lambda p: (["--source", f"{p.root}/pages", "--csv", f"{p.root}/pages/b.png"],
                                      ["--csv", "is an input"]),
    "json_is_record": lambda p: (["--source", str(p.tiny_png), "--json", f"{p.root}/o.mp4", "--record",
                                  f"{p.root}/o.mp4"], ["also given to"]),
    "json_is_weights": lambda p: (["--source", str(p.tiny_png), "--weights", f"{p.root}/corrupt.pt", "--json",
                                   f"{p.root}/corrupt.pt"], ["--json", "is an input (--weights)"]),
    "save_dir_over_sources": lambda p: (["--source", f"{p.root}/pages", "--save-dir", f"{p.root}/pages"],
                                        ["--save-dir", f"{p.root}/pages/a.png", "is an input"]),
    "stdout_twice": lambda p: (["--source", str(p.tiny_png), "--json", "-", "--csv", "-"], ["also given to"]),
    "roi_outside": lambda p: (["--source", str(p.tiny_png), "--roi", "10,10,100,20"], ["--roi", "64x48"]),
}
# name -> (arguments, argparse's message)
BAD_OPTIONS: dict[str, tuple[list[str], str]] = {
    "min_confidence_2": (["--min-confidence", "2"], "--min-confidence must be between 0 and 1"),
    "max_frames_0": (["--max-frames", "0"], "--max-frames must be >= 1"),
    "roi_three": (["--roi", "1,2,3"], "argument --roi: expected x,y,w,h in pixels (four integers), got '1,2,3'"),
    "roi_empty": (["--roi", "1,2,0,5"], "argument --roi: x and y must be >= 0 and w and h >= 1, got '1,2,0,5'"),
    "fourcc_5": (["--fourcc", "MJPEG"], "argument --fourcc: a pixel format is 4 characters (e.g. MJPG, YUYV), "
                                        "got 'MJPEG'"),
    "fps_0": (["--fps", "0"], "--fps must be > 0 and <= 1000"),
    "open_timeout_0": (["--open-timeout", "0"], "--open-timeout must be > 0 (seconds)"),
    # (argparse's list of choices after this is worded differently across Python versions)
    "flip": (["--flip", "x"], "argument --flip: invalid choice: 'x'"),
    "backend": (["--backend", "gpu"], "argument --backend: invalid choice: 'gpu'"),
}
# bad input found without loading a model: each of these must fail within a second
FAST: tuple[str, ...] = ("missing_file", "glob_no_match", "unreadable_image", "fifo", "unwritable_record",
                         "record_is_source", "json_is_record", "roi_outside")


@dataclass
class BadRuns:
    paths: BadPaths
    runs: dict[str, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory: pytest.TempPathFactory) -> BadRuns:
    """All bad-input runs (and --help), started side by side: each is mostly start-up."""
    paths = _bad_paths(tmp_path_factory.mktemp("bad_inputs"))
    before = _unchanged(paths)
    jobs: dict[str, list[str]] = {name: make(paths)[0] + ["--no-display"] for name, make in BAD_INPUTS.items()}
    jobs.update({name: args + ["--no-display"] for name, (args, _) in BAD_OPTIONS.items()})
    jobs["help"] = ["--help"]
    with ThreadPoolExecutor(max_workers=max(2, min(6, os.cpu_count() or 2))) as pool:
        futures = {name: pool.submit(run_cli, args, timeout=180) for name, args in jobs.items()}
        runs = BadRuns(paths, {name: f.result() for name, f in futures.items()})
    assert _unchanged(paths) == before, "a refused run changed an input"
    return runs


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input(case: str, bad_runs: BadRuns) -> None:
    if case == "camera_index" and Path("/dev/video7").exists():
        pytest.skip("this machine has a camera 7")
    if case == "missing_checkpoint":
        assert not (REPO / "nope.pt").exists()
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
    assert lines[-1].startswith(f"python -m realtime: error: {message}"), describe(proc)
    assert len(lines[-1]) <= len(f"python -m realtime: error: {message}") + 60, describe(proc)


def test_help_lists_every_option(bad_runs: BadRuns) -> None:
    proc = bad_runs.runs["help"]
    assert proc.returncode == 0, describe(proc)
    options = _help_options()
    assert {"--source", "--weights", "--record", "--json", "--no-display", "--max-frames"} <= set(options)
    missing = [o for o in options if o not in proc.stdout]
    assert not missing, f"--help does not mention {missing}\n{proc.stdout}"


def test_bad_input_fails_before_models_load(bad_runs: BadRuns) -> None:
    """A bad source, output or option is reported before any model loads: each run takes
    well under the time a run that loads the models takes to read one frame, measured
    alongside it (a ratio, so a loaded machine slows both alike)."""
    cases = {name: BAD_INPUTS[name](bad_runs.paths)[0] for name in FAST}
    cases.update({name: BAD_OPTIONS[name][0] for name in ("roi_three", "fps_0", "min_confidence_2")})
    good = [str(REPO / "assets" / "demo.mp4")]
    proc, loaded = timed_cli(["--source", *good, "--max-frames", "1", "--no-display", "--no-progress"])
    assert proc.returncode == 0, describe(proc)
    slow = {}
    for name, args in cases.items():
        proc, seconds = timed_cli(args + ["--no-display"])
        assert proc.returncode == 2, describe(proc)
        if seconds >= 0.5 * loaded:
            slow[name] = round(seconds, 2)
    assert not slow, f"these took half a model-loading run ({loaded:.2f} s) or more (seconds): {slow}"


def test_backend_choices_match_the_recognizer() -> None:
    from realtime.options import BACKEND_CHOICES
    from realtime.recognizer import BACKENDS

    assert tuple(BACKEND_CHOICES) == tuple(BACKENDS)


@pytest.mark.parametrize("delay", [0.3, 1.0, 2.5])
def test_early_ctrl_c_is_quiet(tmp_path: Path, delay: float) -> None:
    """Ctrl-C while Python, OpenCV or the models are still loading: no traceback, 130."""
    proc = start_cli(["--source", str(REPO / "assets" / "demo.mp4"), "--no-display", "--no-progress",
                      "--json", tmp_path / "o.jsonl"])
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    run = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, describe(run)
    assert proc.returncode in (130, 0), describe(run)  # 0 only if it had already finished
    if proc.returncode == 130:
        assert err.strip().splitlines()[-1] in ("interrupted: outputs closed", "stopped by signal 2: outputs closed")


@pytest.fixture
def silent_server():
    """A TCP server on the loopback that accepts and never answers: a hung stream."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    accepted = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conns.append(srv.accept()[0])
            except OSError:
                return
            accepted.set()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/cam.mjpg", accepted
    srv.close()
    for c in conns:
        c.close()


def test_hanging_stream_honours_open_timeout(silent_server) -> None:
    """OpenCV alone waits 30 s on such a URL; the CLI gives up after --open-timeout."""
    url, accepted = silent_server
    proc, seconds = timed_cli(["--source", url, "--open-timeout", "2", "--no-display"])
    assert proc.returncode == 2, describe(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and url in lines[0], describe(proc)
    assert accepted.is_set()
    assert seconds < 2 * 4, f"{seconds:.1f} s for a 2 s open timeout"


def test_ctrl_c_while_a_stream_hangs_is_prompt(silent_server) -> None:
    url, accepted = silent_server
    proc = start_cli(["--source", url, "--open-timeout", "60", "--no-display"])
    try:
        assert accepted.wait(30), "the CLI never connected"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        seconds = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    run = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert proc.returncode == 130 and "Traceback" not in err, describe(run)
    assert seconds < 60 / 10, f"exit {seconds:.1f} s after Ctrl-C (open timeout 60 s)"


def test_json_to_a_full_device(bad_runs: BadRuns) -> None:
    """``--json /dev/full``: one error line (no traceback), exit 1."""
    proc = run_cli(["--source", str(bad_runs.paths.tiny_png), "--no-display", "--json", "/dev/full"])
    assert proc.returncode == 1, describe(proc)
    lines = proc.stderr.strip().splitlines()
    assert lines == ["error: cannot write /dev/full: No space left on device"], describe(proc)


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_full_disk_mid_recording(inputs: Inputs, tmp_path: Path) -> None:
    """The disk fills (a 1.5 MB file size limit): one error line, exit 1, and the video
    plays, holding the frames the JSON lines describe."""
    noisy = tmp_path / "noisy.avi"  # noise barely compresses: the recording fills up fast
    rng = np.random.default_rng(3)
    _write_video(noisy, [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(8)] * 40)
    out_json, out_mp4 = tmp_path / "o.jsonl", tmp_path / "o.mp4"
    proc = run_cli(["--source", noisy, "--no-display", "--no-progress", "--record", out_mp4, "--json", out_json],
                   preexec_fn=_file_size_limit(1_500_000), timeout=300)
    assert proc.returncode == 1, describe(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no room left to record"), describe(proc)
    records = read_jsonl(out_json)
    n = video_info(out_mp4)[0]
    assert 0 < n < 320 and n == len(records), (n, len(records))


def test_outputs_to_stdout_and_default_folders(inputs: Inputs, tmp_path: Path) -> None:
    """``--json -`` is standard output, output folders are made, ``--save-dir`` alone
    saves annotated images in runs/predict/expN, and the closing line says where."""
    work = tmp_path / "work"
    work.mkdir()
    deep = work / "a" / "b"
    proc = run_cli(["--source", inputs.images, "--no-display", "--json", "-", "--csv", deep / "n.csv",
                    "--record", deep / "v.avi", "--save-dir"], cwd=work)
    closing = _assert_clean_success(proc, frames=3)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["source"] for r in records] == [f["file"] for f in inputs.image_truth]
    saved = sorted(p.name for p in (work / "runs" / "predict" / "exp1").iterdir())
    assert saved == sorted(f["file"] for f in inputs.image_truth)
    assert (deep / "n.csv").is_file() and video_info(deep / "v.avi")[0] == 3
    assert "standard output" in closing and "runs/predict/exp1" in closing, closing
    img = cv2.imread(str(work / "runs" / "predict" / "exp1" / saved[0]))
    assert img.shape == (240, 320, 3) and not np.array_equal(img, cv2.imread(str(inputs.images / saved[0])))
    again = run_cli(["--source", inputs.images, "--no-display", "--save-dir"], cwd=work)
    assert "runs/predict/exp2" in _assert_clean_success(again, frames=3)


def test_glob_lines_name_their_files(tmp_path: Path, inputs: Inputs) -> None:
    """A glob over folders gives each line its path below the glob's root, not 0.png x7."""
    root = tmp_path / "digits"
    for d in ("3", "7"):
        (root / d).mkdir(parents=True)
        (root / d / "0.png").write_bytes((inputs.images / inputs.image_truth[0]["file"]).read_bytes())
    proc = run_cli(["--source", "digits/*/*.png", "--no-display", "--json", "-", "--no-track"], cwd=tmp_path)
    _assert_clean_success(proc, frames=2)
    assert [json.loads(line)["source"] for line in proc.stdout.splitlines()] == ["3/0.png", "7/0.png"]


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
    out = tmp_path / "out"  # not there yet: the CLI creates output folders
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


# --------------------------------------------------------------------------- live recording


class PacedCamera:
    """A camera (cv2.VideoCapture's interface) that delivers ``frames`` in a loop at
    ``fps`` in real time, as a webcam does whether or not anyone keeps up."""

    def __init__(self, frames: list[np.ndarray], fps: float) -> None:
        self.frames, self.fps = frames, fps
        self.start: float | None = None
        self.reads = 0
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802 (cv2 API)
        return not self.released

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.released:
            return False, None
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.reads / self.fps
        time.sleep(max(0.0, due - time.monotonic()))
        self.reads += 1
        return True, self.frames[self.reads % len(self.frames)].copy()

    def get(self, prop: int) -> float:
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def set(self, prop: int, value: float) -> bool:
        return False

    def release(self) -> None:
        self.released = True


class SlowRecognizer:
    """The real recognizer on a machine ``delay`` seconds per frame slower."""

    def __init__(self, rec: Any, delay: float) -> None:
        self.rec, self.delay = rec, delay
        self.min_confidence = rec.min_confidence

    def detect(self, frame: np.ndarray, **kwargs: Any) -> list[Any]:
        time.sleep(self.delay)
        return self.rec.detect(frame, **kwargs)


@pytest.mark.parametrize("camera_fps,delay", [(60.0, 0.08), (8.0, 0.0)], ids=["camera-faster", "camera-slower"])
def test_live_recording_lasts_as_long_as_the_run(recognizer, inputs: Inputs, tmp_path: Path,
                                                 camera_fps: float, delay: float) -> None:
    """A camera faster than processing (most of its frames dropped) or slower: the
    recording follows capture time, so it lasts as long as the run, and each JSON
    line's t is its frame's capture time."""
    from realtime.__main__ import LiveSettings, run
    from realtime.sinks import graceful_shutdown
    from realtime.sources import CameraSource

    cap = cv2.VideoCapture(str(inputs.short_video))
    frames = [cap.read()[1] for _ in range(SHORT_FRAMES)]
    cap.release()
    camera = PacedCamera(frames, camera_fps)
    out_mp4, out_json = tmp_path / "live.mp4", tmp_path / "live.jsonl"
    n_frames = 25
    settings = LiveSettings(source="0", record=str(out_mp4), json=str(out_json), no_display=True,
                            max_frames=n_frames, progress=False)
    src = CameraSource(0, capture_factory=lambda _d: camera)
    with graceful_shutdown() as guard:
        assert run(settings, guard, source=src, recognizer=SlowRecognizer(recognizer, delay)) == 0
    records = read_jsonl(out_json)
    check_records(records, sources="0", sizes=(320, 240))
    ran = records[-1]["t"]  # capture time of the last frame read, from the first
    n, _, _, fps = video_info(out_mp4)
    assert fps == pytest.approx(camera_fps, rel=0.1)
    duration = n / fps
    processed_fps = (len(records) - 1) / ran
    print(f"camera {camera_fps:g} fps, processing {processed_fps:.1f} fps: {len(records)} frames read in "
          f"{ran:.2f} s, recording {n} frames = {duration:.2f} s")
    assert len(records) == n_frames
    assert ran <= duration <= ran + 0.5 + 2 / fps, f"recording {duration:.2f} s for a {ran:.2f} s run"


# --------------------------------------------------------------------------- frames


def test_loop_roi_and_flip(inputs: Inputs, tmp_path: Path) -> None:
    """--loop plays a clip again (lines numbered on), --roi reads only its rectangle
    (boxes in frame pixels, inside it), --flip h mirrors the frame before reading."""
    plain, roi, flip = tmp_path / "plain.jsonl", tmp_path / "roi.jsonl", tmp_path / "flip.jsonl"
    common = ["--source", str(inputs.short_video), "--no-display", "--no-track"]
    runs = [run_cli(common + ["--json", plain, "--loop", "--max-frames", str(SHORT_FRAMES + 5)]),
            run_cli(common + ["--json", roi, "--roi", "160,0,160,240", "--max-frames", "3"]),
            run_cli(common + ["--json", flip, "--flip", "--max-frames", "3"])]
    for proc in runs:
        _assert_clean_success(proc)
    looped = read_jsonl(plain)
    check_records(looped, sources=str(inputs.short_video), sizes=(320, 240))
    assert len(looped) == SHORT_FRAMES + 5
    assert [r["detections"] for r in looped[SHORT_FRAMES:]] == [r["detections"] for r in looped[:5]], \
        "the second pass does not read the clip's first frames again"
    right = read_jsonl(roi)
    assert all(d["box"][0] >= 160 for r in right for d in r["detections"])
    full_right = [d for d in looped[0]["detections"] if d["box"][0] >= 165]
    assert len(right[0]["detections"]) >= len(full_right) - 1 > 0
    mirrored = read_jsonl(flip)[0]["detections"]
    expect = sorted(320 - d["box"][0] - d["box"][2] for d in looped[0]["detections"])
    got = sorted(d["box"][0] for d in mirrored)
    assert len(got) >= 0.8 * len(expect) and all(min(abs(g - e) for e in expect) <= 3 for g in got), (got, expect)


def test_camera_line_says_what_was_delivered(inputs: Inputs) -> None:
    """Drivers quietly give another size or rate than asked: the CLI prints both."""
    from realtime.__main__ import camera_line
    from realtime.sources import CameraSource

    cap = cv2.VideoCapture(str(inputs.short_video))
    frames = [cap.read()[1] for _ in range(3)]
    cap.release()
    with CameraSource(0, width=1280, height=720, fps=60, fourcc="MJPG",
                      capture_factory=lambda _d: PacedCamera(frames, 20.0)) as src:
        line = camera_line(src)
    assert re.fullmatch(r"camera 0: 320x240 at (19\.\d|20\.\d) fps \(asked 1280x720, 60 fps, MJPG\)", line), line
