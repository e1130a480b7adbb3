"""What the web app's tests, benchmark and screenshots share: the real server in a
subprocess, demo frames with known digits, a fake-camera clip, and headless Chromium.

- :func:`serve`: ``python -m realtime.web --port 0 ...`` started as a user would, its URL
  read from the line it prints once it listens; stopped with SIGTERM.
- :func:`demo_frames`: frames of ``assets/demo.mp4``, whose numbers are known
  (``assets/DEMO.md``: ``1230 7754 3 8``, ``7650 9``, ``2 5 6 6 6 9 2``).
- :func:`write_y4m`: frames as a Y4M clip for Chromium's fake camera.
- :func:`chromium`: a Playwright browser on the system's Chromium, offline flags.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "assets" / "demo.mp4"
# the numbers of the clip's rows that the shipped recognizer reads in its first frame
DEMO_NUMBERS = {"1230", "7754", "7650"}
# a server that has not printed its URL by then is broken, not slow (loading takes ~5 s)
START_WATCHDOG_S = 300
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Server:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serve(*args: str, workers: int | None = 1) -> Iterator[Server]:
    """The web app in a subprocess on a free port (``workers`` recognizers; ``None``: the
    server's default); its URL once it listens."""
    tmp = Path(tempfile.mkdtemp(prefix="web-test-"))
    log = tmp / "stderr.txt"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "realtime.web", "--port", "0", *args]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    watchdog = threading.Timer(START_WATCHDOG_S, proc.kill)
    watchdog.start()
    try:
        line = proc.stdout.readline()  # the event: the server printed its URL (or died)
        watchdog.cancel()
        if "serving on" not in line:
            proc.wait(timeout=30)
            raise RuntimeError(f"server did not start (rc {proc.returncode}): {log.read_text()[-2000:]}")
        yield Server(proc, line.split("serving on ", 1)[1].split()[0].rstrip("/"), log)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
        shutil.rmtree(tmp, ignore_errors=True)


def demo_frames(n: int, start: int = 0) -> list[np.ndarray]:
    """``n`` BGR frames of the demo clip from frame ``start``."""
    cap = cv2.VideoCapture(str(DEMO))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = []
    while len(frames) < n:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    assert len(frames) == n, f"{DEMO}: only {len(frames)} frames from {start}"
    return frames


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float = 30.0) -> Path:
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        out.write(f)
    out.release()
    return path


def write_y4m(path: Path, frames: Sequence[np.ndarray], fps: int = 30) -> Path:
    """A raw 4:2:0 Y4M clip, the format Chromium's fake camera plays (looped)."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for img in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


@contextlib.contextmanager
def chromium(*extra: str) -> Iterator[object]:
    """A headless Playwright browser on the system Chromium (fresh profile, offline flags)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_FLAGS, *extra])
        try:
            yield browser
        finally:
            browser.close()
