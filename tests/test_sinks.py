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
    JsonlWriter,
    Shutdown,
    SinkError,
    VideoRecorder,
    graceful_shutdown,
    install_signal_handlers,
    interruption,
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


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_recorder_writes_all_frames(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"out{ext}"
    with VideoRecorder(path, fps=10, size=(64, 48)) as rec:
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
    import sys, time
    import numpy as np
    from realtime.sinks import JsonlWriter, Shutdown, VideoRecorder, graceful_shutdown

    video, jsonl = sys.argv[1], sys.argv[2]
    try:
        with graceful_shutdown(), VideoRecorder(video, 20, (64, 48)) as rec, JsonlWriter(jsonl) as jl:
            for i in range(3000):  # bounded, in case the signal never comes
                rec.write(np.full((48, 64, 3), i % 256, np.uint8))
                jl.write({"frame": i, "digits": [i % 10], "pad": "x" * 50})
                print(rec.frames_written, flush=True)
                time.sleep(0.005)
    except Shutdown as e:
        print("closed", rec.frames_written, file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_recording_leaves_playable_files(tmp_path: Path, sig: int) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    video, jsonl = tmp_path / "rec.mp4", tmp_path / "rec.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, str(script), str(video), str(jsonl)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reported = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # wait until recording is well under way
            reported = int(line)
            if reported >= 15:
                break
        assert reported >= 15, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for line in out.split():
        reported = int(line)
    assert proc.returncode == 128 + sig, err
    assert "closed" in err
    written = int(err.split("closed")[1].split()[0])
    # The signal can land between write() and the print, so the child may have
    # written one frame more than it reported.
    assert reported <= written <= reported + 1

    frames_back = _read_back(video)
    assert len(frames_back) == written
    assert frames_back[0].shape == (48, 64, 3)
    assert abs(float(frames_back[-1].mean()) - (written - 1) % 256) < 8

    lines = jsonl.read_text(encoding="utf-8").splitlines()
    recs = [json.loads(line) for line in lines]  # every line complete and valid
    assert [r["frame"] for r in recs] == list(range(len(recs)))
    assert written - 1 <= len(recs) <= written
