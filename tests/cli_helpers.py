"""Helpers for tests/test_cli.py: run ``python -m realtime`` as a user would, and check
what it leaves behind (JSON lines against the documented schema, recordings).

Kept free of pytest fixtures so that the same checks can be used by hand when a CLI
test fails (``PYTHONPATH=.:tests python``, then ``from cli_helpers import read_jsonl, ...``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2

REPO = Path(__file__).resolve().parent.parent

#: The demo clip's recipe, exactly as written in assets/DEMO.md (a test checks both agree
#: and that these settings still render the committed clip).
DEMO_SEED = 3
DEMO_FRAMES = 300
DEMO_FPS = 30.0
DEMO_CONFIG: dict[str, Any] = dict(
    width=640, height=480, n_digits=30, digit_px=(30, 80), paper="cream", lines="ruled",
    ink="blue", pen_px=0, desk=True, tilt=0.35, shadow=0.35, blur="none", lens_blur=0.6,
    noise=2.5, jpeg=0, brightness=0.95, group_prob=0.5,
)

TOP_KEYS = ("frame", "source", "ms", "detections")
LATER_KEYS = ("numbers", "t")  # added after the documented ones, in this order
DETECTION_KEYS = {"box", "digit", "confidence"}
NUMBER_KEYS = {"value", "box", "digits"}


# --------------------------------------------------------------------------- running


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a headless machine: no X11/Wayland display, Qt offscreen."""
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["PYTHONUNBUFFERED"] = "1"
    # the repository importable from any working folder (outputs that default to the cwd)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def cli_command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "realtime", *[str(a) for a in args]]


def run_cli(args: Sequence[str], *, timeout: float = 120.0, cwd: Path = REPO,
            preexec_fn: Any = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion; stdout and stderr are captured as text."""
    return subprocess.run(cli_command(args), cwd=cwd, env=cli_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, preexec_fn=preexec_fn)


def timed_cli(args: Sequence[str], *, timeout: float = 60.0) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the CLI; also return the process's own wall time (start to exit, in seconds)."""
    t0 = time.monotonic()
    proc = run_cli(args, timeout=timeout)
    return proc, time.monotonic() - t0


def start_cli(args: Sequence[str], *, cwd: Path = REPO) -> subprocess.Popen[str]:
    """Start the CLI in the background (for signal tests)."""
    return subprocess.Popen(cli_command(args), cwd=cwd, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def describe(proc: subprocess.CompletedProcess[str] | Any) -> str:
    """Everything needed to understand a failed run, for assertion messages."""
    args = getattr(proc, "args", "?")
    return (f"command: {args}\nexit code: {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")


def complete_lines(path: Path) -> int:
    """Newline-terminated lines in ``path`` so far (0 if it does not exist yet)."""
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_for_lines(proc: subprocess.Popen[str], path: Path, n: int, timeout: float = 90.0) -> int:
    """Wait until ``path`` holds ``n`` complete lines; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        have = complete_lines(path)
        if have >= n:
            return have
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"CLI ended (exit {proc.returncode}) after {have} JSON lines, before "
                                 f"it could be interrupted\n--- stderr ---\n{err}")
        time.sleep(0.05)
    raise AssertionError(f"only {complete_lines(path)} JSON lines after {timeout:g} s")


# --------------------------------------------------------------------------- outputs


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL file, parsed; fails on a line that is not a JSON object."""
    text = Path(path).read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{path}: last line is not terminated"
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise AssertionError(f"{path}:{n} is not valid JSON ({err}): {line[:200]!r}") from None
        assert isinstance(rec, dict), f"{path}:{n} is not a JSON object: {line[:200]!r}"
        records.append(rec)
    return records


def video_info(path: Path) -> tuple[int, int, int, float]:
    """``(decoded frame count, width, height, fps)`` of a video; fails if it does not open."""
    cap = cv2.VideoCapture(str(path))
    try:
        assert cap.isOpened(), f"{path} does not open with cv2.VideoCapture"
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        n, size = 0, None
        while True:
            ok, img = cap.read()
            if not ok:
                break
            if size is None:
                size = (img.shape[1], img.shape[0])
            n += 1
    finally:
        cap.release()
    assert size is not None, f"{path} opens but holds no decodable frame"
    return n, size[0], size[1], fps


def read_frames(path: Path, indices: Sequence[int]) -> dict[int, Any]:
    """The decoded frames at ``indices`` (read sequentially: exact for mp4v)."""
    want, out = set(indices), {}
    cap = cv2.VideoCapture(str(path))
    i = 0
    while want - out.keys():
        ok, img = cap.read()
        if not ok:
            break
        if i in want:
            out[i] = img
        i += 1
    cap.release()
    return out


# --------------------------------------------------------------------------- schema


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_float(v: Any) -> bool:
    return isinstance(v, float) and math.isfinite(v)


def _check_box(box: Any, where: str, size: tuple[int, int] | None) -> None:
    assert isinstance(box, list) and len(box) == 4 and all(_is_int(v) for v in box), \
        f"{where}: box must be a list of 4 ints, got {box!r}"
    x, y, w, h = box
    assert w > 0 and h > 0 and x >= 0 and y >= 0, f"{where}: box {box} is empty or negative"
    if size is not None:
        fw, fh = size
        assert x + w <= fw and y + h <= fh, f"{where}: box {box} leaves the {fw}x{fh} frame"


def check_record(rec: Mapping[str, Any], *, index: int, source: str | None,
                 size: tuple[int, int] | None) -> None:
    """Validate one JSON line against the documented schema (see README / __main__.py):

    ``frame`` int (== ``index``), ``source`` str (== ``source`` unless None), ``ms`` float
    >= 0, ``detections`` [{``box`` [x, y, w, h] ints inside the ``size`` (w, h) frame,
    ``digit`` int 0-9, ``confidence`` float in [0, 1]}], in that order; later keys are
    allowed, and ``numbers`` when present is [{``value`` str of digits, ``box`` 4 ints,
    ``digits`` indices into detections}] whose value spells those detections' digits;
    ``t`` (seconds since the start) a number >= 0, after ``numbers``.
    """
    where = f"frame {index}"
    keys = list(rec)
    assert keys[:4] == list(TOP_KEYS), f"{where}: keys must start with {TOP_KEYS}, got {keys}"
    later = [k for k in keys[4:] if k in LATER_KEYS]
    assert later == [k for k in LATER_KEYS if k in later], f"{where}: later keys out of order: {keys}"
    if "t" in rec:
        assert (_is_float(rec["t"]) or _is_int(rec["t"])) and rec["t"] >= 0, f"{where}: 't' is {rec['t']!r}"
    assert _is_int(rec["frame"]) and rec["frame"] == index, f"{where}: 'frame' is {rec['frame']!r}"
    assert isinstance(rec["source"], str), f"{where}: 'source' is {rec['source']!r}"
    if source is not None:
        assert rec["source"] == source, f"{where}: 'source' is {rec['source']!r}, expected {source!r}"
    assert _is_float(rec["ms"]) and rec["ms"] >= 0, f"{where}: 'ms' is {rec['ms']!r}"
    dets = rec["detections"]
    assert isinstance(dets, list), f"{where}: 'detections' is not a list"
    for i, d in enumerate(dets):
        dw = f"{where} detection {i}"
        assert isinstance(d, dict) and set(d) == DETECTION_KEYS, f"{dw}: keys {sorted(d)} != {sorted(DETECTION_KEYS)}"
        _check_box(d["box"], dw, size)
        assert _is_int(d["digit"]) and 0 <= d["digit"] <= 9, f"{dw}: digit {d['digit']!r}"
        c = d["confidence"]
        assert (_is_float(c) or _is_int(c)) and 0.0 <= c <= 1.0, f"{dw}: confidence {c!r}"
    if "numbers" in rec:
        nums = rec["numbers"]
        assert isinstance(nums, list), f"{where}: 'numbers' is not a list"
        used: list[int] = []
        for k, n in enumerate(nums):
            nw = f"{where} number {k}"
            assert isinstance(n, dict) and set(n) == NUMBER_KEYS, f"{nw}: keys {sorted(n)} != {sorted(NUMBER_KEYS)}"
            v = n["value"]
            assert isinstance(v, str) and v and v.isascii() and v.isdigit(), f"{nw}: value {v!r}"
            _check_box(n["box"], nw, None)
            idx = n["digits"]
            assert isinstance(idx, list) and idx and all(_is_int(i) and 0 <= i < len(dets) for i in idx), \
                f"{nw}: digits {idx!r} do not index the {len(dets)} detections"
            spelled = "".join(str(dets[i]["digit"]) for i in idx)
            assert spelled == v, f"{nw}: value {v!r} but its detections read {spelled!r}"
            used.extend(idx)
        assert len(used) == len(set(used)), f"{where}: a detection belongs to two numbers: {used}"


def check_records(records: Sequence[Mapping[str, Any]], *, sources: Sequence[str | None] | str | None,
                  sizes: Sequence[tuple[int, int]] | tuple[int, int] | None) -> None:
    """Every line valid, ``frame`` consecutive from 0; ``sources``/``sizes`` per line or shared."""
    for i, rec in enumerate(records):
        src = sources if sources is None or isinstance(sources, str) else sources[i]
        size = sizes if sizes is None or isinstance(sizes[0], int) else sizes[i]  # type: ignore[index]
        check_record(rec, index=i, source=src, size=size)  # type: ignore[arg-type]
        assert "t" in rec, f"frame {i}: no 't'"
        if i:
            assert rec["t"] >= records[i - 1]["t"], f"frame {i}: 't' went back ({records[i - 1]['t']} -> {rec['t']})"
