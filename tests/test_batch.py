"""The batch job (python -m realtime.batch, digits batch): inputs found, results written as
JSON lines, resumed, rewritten when an input changes, the same whichever workers read them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from cli_helpers import cli_env
from glyphs import paper, write
from realtime.batch import Entry, Task, find_inputs, plan_resume, BatchError

REPO = Path(__file__).resolve().parent.parent


def batch(args: list[str], timeout: float = 300.0, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "realtime.batch", *map(str, args), "--no-progress"],
                          capture_output=True, text=True, timeout=timeout, env=cli_env(), cwd=cwd)


def digits_image(path: Path, text: str, seed: int = 0) -> None:
    img = paper(320, 120, seed=seed)
    write(img, text, 24, 84, height=52, thickness=4)
    assert cv2.imwrite(str(path), img)


def lines(out: Path) -> list[dict]:
    found = []
    for shard in sorted(out.glob("part-*.jsonl")):
        found += [json.loads(line) for line in shard.read_text().splitlines()]
    return found


def read_digits(record: dict) -> str:
    return "".join(str(d["digit"]) for d in sorted(record["detections"], key=lambda d: d["box"][0]))


def comparable(records: list[dict]) -> list[str]:
    """The lines without their timing, sorted: what must not depend on who read them."""
    return sorted(json.dumps({k: v for k, v in r.items() if k != "ms"}, sort_keys=True) for r in records)


@pytest.fixture()
def scans(tmp_path: Path) -> Path:
    """A folder of scans: three pages of digits (one in a sub-folder), a short video,
    a damaged PNG and a text file that is not an input."""
    root = tmp_path / "scans"
    (root / "more").mkdir(parents=True)
    digits_image(root / "a.png", "3 7 1")
    digits_image(root / "b.jpg", "4 0", seed=1)
    digits_image(root / "more" / "c.png", "2 5 8", seed=2)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "notes.txt").write_text("not an image")
    frame = paper(320, 120, seed=3)
    write(frame, "6 9", 24, 84, height=52, thickness=4)
    video = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 120))
    for _ in range(5):
        video.write(frame)
    video.release()
    return root


def test_find_inputs_walks_folders_skips_the_output_and_refuses_what_is_missing(scans: Path) -> None:
    out = scans / "results"
    out.mkdir()
    digits_image(out / "annotated.png", "1")  # an earlier run's image: never an input
    tasks = find_inputs([str(scans), str(scans / "a.png")], skip=out)
    names = [Path(t.source).relative_to(scans).as_posix() for t in tasks]
    assert names == ["a.png", "b.jpg", "broken.png", "clip.avi", "more/c.png"]
    assert [t.video for t in tasks] == [False, False, False, True, False]
    assert len(find_inputs([str(scans / "**" / "*.png")])) == 4  # ** recurses, results/ too
    with pytest.raises(BatchError, match="no such file or folder"):
        find_inputs([str(scans / "absent")])
    with pytest.raises(BatchError, match="no files match"):
        find_inputs([str(scans / "*.tif")])


def test_resume_keeps_only_entries_whose_input_is_unchanged_and_whose_lines_are_there() -> None:
    def task(name: str, size: int = 10, mtime: int = 1) -> Task:
        return Task(source=name, path="/" + name, size=size, mtime_ns=mtime, video=False)

    def entry(name: str, start: int, end: int, size: int = 10, mtime: int = 1, error: str | None = None) -> Entry:
        return Entry(path="/" + name, source=name, size=size, mtime_ns=mtime, shard="part-000.jsonl",
                     start=start, end=end, frames=1, digits=1, error=error)

    entries = [entry("a", 0, 5), entry("b", 5, 9), entry("c", 9, 14), entry("d", 14, 20, error="bad"),
               entry("e", 20, 30)]
    tasks = [task("a"), task("b", mtime=2), task("c"), task("d"), task("e")]
    plan = plan_resume(entries, tasks, {"part-000.jsonl": 25})
    # b changed since it was read; e's lines were cut off by a kill
    assert sorted(plan.done) == ["/a", "/c", "/d"] and plan.dropped == 2
    assert sorted(plan_resume(entries, tasks, {"part-000.jsonl": 25}, retry_errors=True).done) == ["/a", "/c"]
    # the last entry of a path wins
    again = entries + [entry("a", 30, 31)]
    assert plan_resume(again, tasks, {"part-000.jsonl": 31}).done["/a"].start == 30


def test_batch_reads_resumes_and_reads_a_changed_input_again(scans: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = batch([scans, "--out", out])
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    records = lines(out)
    by_source = {}
    for r in records:
        by_source.setdefault(Path(r["source"]).relative_to(scans).as_posix(), []).append(r)
    assert sorted(by_source) == ["a.png", "b.jpg", "clip.avi", "more/c.png"]
    assert read_digits(by_source["a.png"][0]) == "371"
    assert read_digits(by_source["b.jpg"][0]) == "40"
    assert read_digits(by_source["more/c.png"][0]) == "258"
    clip = by_source["clip.avi"]
    assert [r["frame"] for r in clip] == list(range(5))
    assert [r["t"] for r in clip] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert all(read_digits(r) == "69" for r in clip)
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["files"], summary["frames"], summary["errors"], summary["skipped"]) == (5, 8, 1, 0)
    assert summary["digits"] == 3 + 2 + 3 + 5 * 2
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    broken = [m for m in manifest if m["source"].endswith("broken.png")]
    assert len(broken) == 1 and broken[0]["error"]
    assert "broken.png" in run.stderr  # said, not only recorded

    again = batch([scans, "--out", out])
    assert again.returncode == 0, again.stderr
    assert "5 of 5 inputs read before: skipped, 1 of them unreadable" in again.stderr
    assert comparable(lines(out)) == comparable(records)

    digits_image(scans / "a.png", "9 6 2", seed=5)  # rewritten: new size and time
    os.utime(scans / "a.png", ns=(time.time_ns(), time.time_ns() + 10**9))
    third = batch([scans, "--out", out])
    assert third.returncode == 0, third.stderr
    assert "4 of 5 inputs read before: skipped" in third.stderr
    after = [r for r in lines(out) if r["source"].endswith("a.png")]
    assert len(after) == 1 and read_digits(after[0]) == "962"  # the old line is gone
    assert len(lines(out)) == len(records)


def test_a_run_killed_mid_write_resumes_to_the_same_results(scans: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert batch([scans, "--out", out]).returncode == 0
    whole = comparable(lines(out))
    # what a kill leaves: a shard line no manifest line claims and a manifest line cut short
    with open(out / "part-000.jsonl", "a") as fh:
        fh.write('{"frame":0,"source":"ghost.png","ms":1.0,"detections":[]}\n{"frame":1,"sou')
    manifest = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    (out / "manifest.jsonl").write_text("".join(manifest[:-1]) + manifest[-1][:25])
    rerun = batch([scans, "--out", out])
    assert rerun.returncode == 0, rerun.stderr
    assert "4 of 5 inputs read before: skipped" in rerun.stderr
    assert comparable(lines(out)) == whole


def test_sigterm_stops_the_run_consistently_and_a_rerun_finishes_it(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(150):
        digits_image(root / f"{i:03d}.png", f"{i % 10} {(i * 7) % 10}", seed=i)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "realtime.batch", str(root), "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=REPO)
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:  # until the first file is recorded
        if manifest.exists() and manifest.stat().st_size > 0:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "stopped (a rerun resumes)" in err
    done = len(manifest.read_text().splitlines())
    assert 0 < done < 150
    assert len(lines(out)) == done  # every recorded file's line, nothing more
    rerun = batch([root, "--out", out])
    assert rerun.returncode == 0, rerun.stderr
    assert f"{done} of 150 inputs read before: skipped" in rerun.stderr
    records = lines(out)
    assert sorted(r["source"] for r in records) == sorted(str(root / f"{i:03d}.png") for i in range(150))
    for r in records:
        i = int(Path(r["source"]).stem)
        assert read_digits(r) == f"{i % 10}{(i * 7) % 10}"


def test_two_workers_write_what_one_writes(scans: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert batch([scans, "--out", one, "--workers", "1"]).returncode == 0
    run = batch([scans, "--out", two, "--workers", "2"])
    assert run.returncode == 0, run.stderr
    assert comparable(lines(two)) == comparable(lines(one))
    # a file's lines stay together in one shard
    for shard in two.glob("part-*.jsonl"):
        sources = [json.loads(line)["source"] for line in shard.read_text().splitlines()]
        runs = [s for i, s in enumerate(sources) if i == 0 or sources[i - 1] != s]
        assert len(runs) == len(set(runs))


@pytest.mark.parametrize("args, needle", [
    ([], "no inputs"),
    (["{scans}/absent"], "no such file or folder"),
    (["{scans}", "--workers", "0"], "--workers must be >= 1"),
    (["{scans}", "--set", "segment.nonsense=1"], "segment"),
    (["{scans}", "--weights", "{scans}/notes.txt"], "notes.txt"),
])
def test_bad_arguments_get_one_line_and_exit_2(scans: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    run = batch([a.format(scans=scans) for a in args] + ["--out", tmp_path / "out"])
    assert run.returncode == 2, run.stderr
    assert needle in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) <= 2  # the "loading" line and the error


def test_digits_batch_is_the_same_command(scans: Path, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "realtime.cli", "batch", str(scans / "a.png"), "--out",
                          str(tmp_path / "o"), "--no-progress"], capture_output=True, text=True, env=cli_env(),
                         cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr
    assert read_digits(lines(tmp_path / "o")[0]) == "371"


def test_on_a_local_ray_instance_the_results_equal_the_local_run(scans: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray.data", reason="Ray is the optional ray extra (pip install '.[ray]')")
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert batch([scans, "--out", local, "--workers", "2"]).returncode == 0
    run = batch([scans, "--out", on_ray, "--workers", "2", "--ray", "local"], timeout=600)
    assert run.returncode == 0, run.stderr
    assert comparable(lines(on_ray)) == comparable(lines(local))
    # and a local run resumes the Ray run's results
    again = batch([scans, "--out", on_ray])
    assert "5 of 5 inputs read before: skipped" in again.stderr
