"""Tests for realtime.sinks: recordings and JSONL files survive every way a run ends."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.sinks import (
    CsvWriter,
    ImageSaver,
    JsonlWriter,
    Shutdown,
    SinkError,
    VideoRecorder,
    graceful_shutdown,
    h264_available,
    install_signal_handlers,
    interruption,
    next_run_dir,
    refuse_overwrites,
)

REPO = Path(__file__).resolve().parents[1]


def _read_back(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} does not open"
    out = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    return out


# (extension, H.264 through PyAV): every route a recording can take
ROUTES = [(".mp4", False), (".avi", False)] + ([(".mp4", True)] if h264_available() else [])
ROUTE_IDS = [f"{ext[1:]}-{'h264' if h else 'opencv'}" for ext, h in ROUTES]


@pytest.mark.parametrize("ext,h264", ROUTES, ids=ROUTE_IDS)
def test_recorder_writes_all_frames(tmp_path: Path, ext: str, h264: bool) -> None:
    path = tmp_path / f"out{ext}"
    with VideoRecorder(path, fps=10, size=(64, 48), h264=h264) as rec:
        assert rec.codec == ("H.264 (PyAV)" if h264 else f"{rec.fourcc} (OpenCV)")
        for i in range(7):
            rec.write(np.full((48, 64, 3), i * 30, np.uint8))
        assert rec.frames_written == 7
    assert rec.closed
    rec.close()  # idempotent
    got = _read_back(path)
    assert len(got) == 7
    assert got[0].shape == (48, 64, 3)
    means = [float(g.mean()) for g in got]
    assert all(abs(m - i * 30) < 8 for i, m in enumerate(means)), means
    cap = cv2.VideoCapture(str(path))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10, abs=0.1)
    cap.release()


def test_recorder_adapts_frames(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "mixed.avi"
    with caplog.at_level(logging.WARNING, logger="realtime.sinks"):
        with VideoRecorder(path, fps=5, size=(32, 24)) as rec:
            rec.write(np.zeros((24, 32, 3), np.uint8))
            rec.write(np.zeros((48, 64, 3), np.uint8))  # other size
            rec.write(np.zeros((48, 64, 3), np.uint8))
            rec.write(np.zeros((24, 32), np.uint8))  # gray
            rec.write(np.zeros((24, 32, 4), np.uint8))  # BGRA
    assert caplog.text.count("resizing") == 1
    got = _read_back(path)
    assert len(got) == 5 and all(g.shape == (24, 32, 3) for g in got)


def test_recorder_errors(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match=r"^cannot open video for writing: .*folder does not exist"):
        VideoRecorder(tmp_path / "no" / "such" / "dir.mp4", 10, (64, 48))
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(SinkError, match="cannot open video for writing"):
        VideoRecorder(tmp_path / "dir.mp4", 10, (64, 48))
    with pytest.raises(SinkError, match="unsupported video extension"):
        VideoRecorder(tmp_path / "x.gif", 10, (64, 48))
    for fps in (0, -1, math.nan):
        with pytest.raises(SinkError, match="invalid fps"):
            VideoRecorder(tmp_path / "x.mp4", fps, (64, 48))
    rec = VideoRecorder(tmp_path / "x.mp4", 10, (64, 48))
    rec.close()
    with pytest.raises(SinkError, match="closed"):
        rec.write(np.zeros((48, 64, 3), np.uint8))


def test_recorder_closed_on_exception(tmp_path: Path) -> None:
    path = tmp_path / "err.mp4"
    with pytest.raises(RuntimeError):
        with VideoRecorder(path, 10, (64, 48)) as rec:
            for _ in range(4):
                rec.write(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError("model crashed")
    assert len(_read_back(path)) == 4


def test_recorder_places_frames_by_time(tmp_path: Path) -> None:
    """A live source's frames go where their capture time puts them: the previous frame
    fills the time it was on screen, a frame whose slot is taken is dropped, and close
    holds the last frame to the end of the run, so the clip lasts as long as the run."""
    path = tmp_path / "timed.avi"
    img = lambda v: np.full((48, 64, 3), v, np.uint8)  # noqa: E731
    with VideoRecorder(path, fps=10, size=(64, 48)) as rec:
        rec.write(img(0), t=0.0)
        rec.write(img(100), t=0.35)  # slot 4: slots 1-3 still show the first frame
        rec.write(img(200), t=0.38)  # slot 4 again: dropped
        rec.write(img(250), t=0.52)  # slot 5
        assert (rec.frames_written, rec.frames_dropped) == (6, 1)
        rec.close(until=1.2)
        assert rec.duration == pytest.approx(1.2)
    got = [int(round(float(g.mean()) / 50)) * 50 for g in _read_back(path)]
    assert got == [0, 0, 0, 0, 100] + [250] * 7


# a child that records noise (which barely compresses) under a file size limit, as
# a disk that fills up; argv: path, h264 (0/1), limit in bytes, blind (0/1: the
# recorder cannot see the room left, as when another program fills the disk)
FULL_CHILD = textwrap.dedent(
    """
    import math, resource, signal, sys
    import cv2
    import numpy as np
    import realtime.sinks as sinks
    from realtime.sinks import SinkError, VideoRecorder

    path, h264, limit, blind = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4] == "1"
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # as the CLI does
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    if blind:
        sinks.space_left = lambda p: math.inf
    base = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    rec = VideoRecorder(path, 30, (320, 240), h264=h264)
    try:
        for i in range(3000):
            rec.write(np.roll(base, 7 * i, axis=1))
        rec.close()
    except SinkError as e:
        print(rec.frames_written)
        print(e, file=sys.stderr)
        sys.exit(1)
    print(rec.frames_written)
    """
)


def _run_full(tmp_path: Path, ext: str, h264: bool, limit: int, blind: bool) -> tuple[subprocess.CompletedProcess, Path]:
    script, path = tmp_path / "full.py", tmp_path / f"full{ext}"
    script.write_text(FULL_CHILD)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OPENCV_FFMPEG_LOGLEVEL="-8")  # FFmpeg's own lines, as the CLI silences them
    proc = subprocess.run([sys.executable, str(script), str(path), str(int(h264)), str(limit), str(int(blind))],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    return proc, path


@pytest.mark.skipif(not hasattr(os, "statvfs"), reason="POSIX file size limits")
@pytest.mark.parametrize("ext,h264", ROUTES, ids=ROUTE_IDS)
def test_full_disk_is_an_error_and_the_recording_plays(tmp_path: Path, ext: str, h264: bool) -> None:
    proc, path = _run_full(tmp_path, ext, h264, 2_000_000, blind=False)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no room left to record" in lines[0] and "plays" in lines[0], proc.stderr
    written = int(proc.stdout.split()[0])
    assert written > 5
    frames_back = _read_back(path)
    assert len(frames_back) == written, (len(frames_back), written)


@pytest.mark.skipif(not hasattr(os, "statvfs"), reason="POSIX file size limits")
@pytest.mark.parametrize("ext,h264", ROUTES, ids=ROUTE_IDS)
def test_write_failure_seen_by_no_check_is_still_an_error(tmp_path: Path, ext: str, h264: bool) -> None:
    """When the disk fills behind the recorder's back: PyAV's failed write, or the file
    OpenCV could not finish, is still an error (exit 1), never a silent short file."""
    proc, path = _run_full(tmp_path, ext, h264, 600_000, blind=True)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    if h264:  # fragmented MP4: what reached the disk before the failure plays
        assert "cannot write video" in proc.stderr
        assert len(_read_back(path)) >= 30


def test_full_tmpfs(tmp_path: Path) -> None:
    """A real full file system (a 3 MB tmpfs) where this machine lets the test mount one."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        base = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
        with pytest.raises(SinkError, match="no room left to record"):
            with VideoRecorder(mnt / "v.mp4", 30, (320, 240)) as rec:
                for i in range(3000):
                    rec.write(np.roll(base, 5 * i, axis=0))
        assert rec.closed and len(_read_back(mnt / "v.mp4")) == rec.frames_written > 5
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_recorder_refuses_a_device(tmp_path: Path) -> None:
    link = tmp_path / "x.avi"
    link.symlink_to("/dev/full")
    with pytest.raises(SinkError, match="not a regular file"):
        VideoRecorder(link, 10, (64, 48))


def test_jsonl_lines_parse(tmp_path: Path) -> None:
    path = tmp_path / "preds.jsonl"
    with JsonlWriter(path) as jl:
        jl.write({"frame": 0, "digits": [3, 1, 4], "note": "é"})
        jl.write({"frame": np.int64(1), "conf": np.float32(0.5), "box": np.array([1, 2, 3, 4])})
        jl.write({"frame": 2, "conf": float("nan"), "nested": {"x": [float("inf"), 1.0]}})
        # Each line is on disk as soon as write() returns.
        assert len(path.read_text(encoding="utf-8").splitlines()) == 3
        assert jl.lines_written == 3
    jl.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    recs = [json.loads(line) for line in lines]
    assert recs[0] == {"frame": 0, "digits": [3, 1, 4], "note": "é"}
    assert recs[1] == {"frame": 1, "conf": 0.5, "box": [1, 2, 3, 4]}
    assert recs[2] == {"frame": 2, "conf": None, "nested": {"x": [None, 1.0]}}
    assert " " not in lines[0].replace("é", "")  # compact separators
    with pytest.raises(SinkError, match="closed"):
        jl.write({"late": True})
    with JsonlWriter(path, append=True) as jl:
        jl.write({"frame": 3})
    assert len(path.read_text(encoding="utf-8").splitlines()) == 4


def test_jsonl_unwritable(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match=r"^cannot open for writing: .*missing"):
        JsonlWriter(tmp_path / "missing" / "x.jsonl")
    with pytest.raises(SinkError, match="cannot open for writing"):
        JsonlWriter(tmp_path)


def test_jsonl_full_device_is_one_error(tmp_path: Path) -> None:
    """``--json /dev/full``: the first line fails with one SinkError; closing adds none."""
    with pytest.raises(SinkError, match=r"^cannot write /dev/full: No space left on device$"):
        with JsonlWriter("/dev/full") as jl:
            jl.write({"frame": 0})
    assert jl.closed
    jl.close()


@pytest.mark.parametrize("cls", ["JsonlWriter", "CsvWriter"])
def test_stdout_sinks(tmp_path: Path, cls: str) -> None:
    """``-`` writes standard output; a full one is one error, and nothing more at exit."""
    code = textwrap.dedent(f"""
        import sys
        from realtime.sinks import {cls}, SinkError
        try:
            with {cls}("-") as out:
                for i in range(3):
                    out.write({{"frame": i}}) if "{cls}" == "JsonlWriter" else out.write(i, 0.5 * i, [{{"value": "42", "box": [1, 2, 3, 4]}}])
        except SinkError as e:
            print(e, file=sys.stderr)
            sys.exit(1)
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    ok = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    if cls == "JsonlWriter":
        assert [json.loads(line) for line in ok.stdout.splitlines()] == [{"frame": i} for i in range(3)]
    else:
        assert ok.stdout.splitlines() == ["frame,t,value,x,y,w,h", "0,0.000,42,1,2,3,4", "1,0.500,42,1,2,3,4",
                                          "2,1.000,42,1,2,3,4"]
    with open("/dev/full", "w") as full:
        bad = subprocess.run([sys.executable, "-c", code], env=env, stdout=full, stderr=subprocess.PIPE,
                             text=True, timeout=60)
    assert bad.returncode == 1, bad.stderr
    assert bad.stderr.strip() == "cannot write <stdout>: No space left on device", bad.stderr


def test_csv_rows_per_number(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    with CsvWriter(path) as out:
        out.write(0, 0.0, [{"value": "007", "box": [10, 20, 30, 40], "digits": [0, 1, 2]},
                           {"value": "5", "box": [1, 2, 3, 4], "digits": [3]}])
        out.write(1, 0.0333, [])
        out.write(2, 0.0667, [{"value": "12", "box": [11, 21, 30, 40], "digits": [0, 1]}])
    import csv

    rows = list(csv.DictReader(path.open()))
    assert [(r["frame"], r["t"], r["value"], r["x"], r["h"]) for r in rows] == [
        ("0", "0.000", "007", "10", "40"), ("0", "0.000", "5", "1", "4"), ("2", "0.067", "12", "11", "40")]


def test_image_saver_and_run_dirs(tmp_path: Path) -> None:
    root = tmp_path / "runs" / "predict"
    first = next_run_dir(root)
    assert first == root / "exp1"
    saver = ImageSaver(first)
    img = np.full((24, 32, 3), 90, np.uint8)
    assert saver.save("sub/a.png", img) == first / "sub" / "a.png"
    assert saver.save("../../b.jpg", img) == first / "b.jpg"  # never outside the folder
    assert saver.save("frame_000003", img) == first / "frame_000003.png"
    assert cv2.imread(str(first / "sub" / "a.png")).shape == (24, 32, 3)
    assert not list(first.rglob(".*.tmp"))
    assert next_run_dir(root) == root / "exp2"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SinkError, match="cannot create folder"):
        ImageSaver(tmp_path / "afile" / "out")


def test_refuse_overwrites(tmp_path: Path) -> None:
    src = tmp_path / "in.mp4"
    src.write_bytes(b"video")
    (tmp_path / "link.mp4").symlink_to(src)
    os.link(src, tmp_path / "hard.mp4")
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"w")
    inputs = {"the source": [src], "--weights": [weights]}
    for out in (src, tmp_path / "link.mp4", tmp_path / "hard.mp4", tmp_path / "sub" / ".." / "in.mp4"):
        with pytest.raises(SinkError, match=r"^--record .* is an input \(the source\)"):
            refuse_overwrites(inputs, {"--record": out})
    with pytest.raises(SinkError, match=r"is an input \(--weights\)"):
        refuse_overwrites(inputs, {"--json": weights})
    with pytest.raises(SinkError, match=r"^--record .*o\.x is also given to --json"):
        refuse_overwrites(inputs, {"--json": tmp_path / "o.x", "--record": tmp_path / "o.x"})
    with pytest.raises(SinkError, match=r"^--csv - is also given to --json"):
        refuse_overwrites(inputs, {"--json": "-", "--csv": "-"})
    refuse_overwrites(inputs, {"--json": "-", "--record": tmp_path / "out.mp4", "--csv": None})
    assert src.read_bytes() == b"video"


def test_graceful_shutdown_restores_handlers() -> None:
    before_int = signal.getsignal(signal.SIGINT)
    before_term = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Shutdown) as info:
        with graceful_shutdown():
            assert signal.getsignal(signal.SIGTERM) is not before_term
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # interrupted by the handler
    assert info.value.signum == signal.SIGTERM and info.value.exit_code == 143
    assert isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGINT) is before_int
    assert signal.getsignal(signal.SIGTERM) is before_term
    restore = install_signal_handlers([signal.SIGTERM])
    restore()
    restore()
    assert signal.getsignal(signal.SIGTERM) is before_term


def test_interruption_unwraps_a_signal_wrapped_by_compiled_code() -> None:
    """A Shutdown raised inside numba's callback surfaces as SystemError chains; the CLI
    must still see the signal (and must not mistake an unrelated error for one)."""
    def wrapped(inner: BaseException) -> SystemError:
        try:
            try:
                raise inner
            except BaseException as e:
                raise SystemError("returned a result with an exception set") from e
        except SystemError as outer:
            try:
                raise SystemError("again") from outer
            except SystemError as top:
                return top

    stop = interruption(wrapped(Shutdown(signal.SIGTERM)))
    assert isinstance(stop, Shutdown) and stop.exit_code == 128 + signal.SIGTERM
    assert isinstance(interruption(wrapped(KeyboardInterrupt())), KeyboardInterrupt)
    assert interruption(wrapped(ValueError("not a signal"))) is None
    direct = Shutdown(signal.SIGINT)
    assert interruption(direct) is direct


CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from realtime.sinks import JsonlWriter, Shutdown, VideoRecorder, graceful_shutdown

    video, jsonl = sys.argv[1], sys.argv[2]
    try:
        with graceful_shutdown() as guard, VideoRecorder(video, 20, (160, 120)) as rec, JsonlWriter(jsonl) as jl:
            for i in range(3000):  # bounded, in case the signal never comes
                # the CLI's order: a frame's line, then its video frame, held together
                with guard.deferred():
                    jl.write({"frame": i, "digits": [i % 10], "pad": "x" * 50})
                    # most of a frame's time goes to encoding: a signal lands there often
                    rec.write(np.full((120, 160, 3), i % 256, np.uint8))
                if i % 5 == 0:
                    print(rec.frames_written, flush=True)
    except Shutdown as e:
        print("closed", rec.frames_written, file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
    """
)

SIGNALS = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])


def _signal_trial(tmp_path: Path, k: int, sig: int) -> tuple[int, int, list[int], str]:
    """One child recording, signalled at once after its 15th frame: (exit code, video
    frames it wrote, its JSON lines' frame numbers, stderr)."""
    script = tmp_path / "child.py"
    if not script.exists():
        script.write_text(CHILD)
    video, jsonl = tmp_path / f"rec{k}.mp4", tmp_path / f"rec{k}.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, str(script), str(video), str(jsonl)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # wait until recording is well under way
            if int(line) >= 15:
                break
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "closed" in err, err
    written = int(err.split("closed")[1].split()[0])
    frames_back = _read_back(video)
    assert len(frames_back) == written and frames_back[0].shape == (120, 160, 3)
    assert abs(float(frames_back[-1].mean()) - (written - 1) % 256) < 8
    recs = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]  # none torn
    return proc.returncode, written, [r["frame"] for r in recs], err


def test_signal_mid_recording_frames_equal_lines(tmp_path: Path) -> None:
    """SIGINT, SIGTERM and SIGHUP (the terminal closed) at random points of a recording,
    over repeated trials: each run exits 128 + signal with a playable video that holds
    exactly the frames its JSON lines describe (a line and its frame are written together)."""
    from concurrent.futures import ThreadPoolExecutor

    trials = [(k, SIGNALS[k % len(SIGNALS)]) for k in range(6)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda ks: _signal_trial(tmp_path, *ks), trials))
    for (k, sig), (code, written, frames, err) in zip(trials, results):
        assert code == 128 + sig, (k, sig, err)
        assert written >= 15
        assert frames == list(range(written)), f"trial {k} ({signal.Signals(sig).name}): {written} video " \
                                               f"frames, {len(frames)} JSON lines"
