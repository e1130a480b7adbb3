"""The window path under a virtual X display (Xvfb): the window opens, shows the
annotated frames, s saves a snapshot, space pauses, q quits with outputs closed.
Skipped where Xvfb and xdotool are not installed (CI installs them when it can)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

pytestmark = pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                                reason="Xvfb and xdotool are not installed (apt-get install xvfb xdotool)")


def _lines(p: Path) -> int:
    return len(p.read_text().splitlines()) if p.exists() else 0


def _wait(cond, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_window_keys_snapshot_pause_quit(tmp_path: Path, repo_root: Path) -> None:
    # a display number nobody holds (a previous server's lock may linger a moment)
    num = next(n for n in range(93, 200) if not Path(f"/tmp/.X{n}-lock").exists()
               and not Path(f"/tmp/.X11-unix/X{n}").exists())
    display = f":{num}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, DISPLAY=display)
    env.pop("QT_QPA_PLATFORM", None)
    out = tmp_path / "o.jsonl"
    proc = None
    try:
        assert _wait(lambda: Path(f"/tmp/.X11-unix/X{num}").exists(), 10.0), "Xvfb did not start"
        proc = subprocess.Popen([sys.executable, "-m", "realtime", "--source", "assets/demo.mp4",
                                 "--snapshot-dir", str(tmp_path), "--json", str(out)],
                                cwd=repo_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def window() -> str:
            r = subprocess.run(["xdotool", "search", "--name", "realtime digits"], env=env,
                               capture_output=True, text=True)
            return r.stdout.split()[0] if r.stdout.split() else ""

        assert _wait(lambda: bool(window()) and _lines(out) >= 5), "no window / no frames"
        wid = window()
        key = lambda k: subprocess.run(["xdotool", "key", "--window", wid, k], env=env, capture_output=True)  # noqa: E731
        key("s")
        def snapshot():
            # the file appears before the PNG is fully written: wait until it decodes
            files = list(tmp_path.glob("snapshot_*.png"))
            return cv2.imread(str(files[0])) if files else None

        assert _wait(lambda: snapshot() is not None), "s saved no readable snapshot"
        assert snapshot().shape[:2] == (480, 640)
        # the window plays the file at its frame rate, so it is still running: pause it
        key("space")
        time.sleep(0.5)
        n1 = _lines(out)
        time.sleep(1.0)
        assert _lines(out) == n1, "frames kept coming while paused"
        key("space")
        assert _wait(lambda: _lines(out) > n1, 5.0), "space did not resume"
        key("q")
        proc.wait(timeout=20)
        assert proc.returncode == 0, proc.stderr.read()[-1000:]
        assert 0 < _lines(out) < 300  # quit before the end of the 300-frame clip
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        xvfb.terminate()
        xvfb.wait(timeout=10)
