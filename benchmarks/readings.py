"""Every reading of a fixed set of frames, written down, and two such records compared.

A change that should not change behaviour (a refactor, a faster route) must read every
frame exactly as before. ``python -m benchmarks.readings --out before.jsonl`` writes one
JSON line per frame: the tuning scenes (``benchmarks.tuning``), the reported rendered
set (``benchmarks.accuracy``, seed 2026) and, when their folders are given, the real
photos (``benchmarks.real``), each with every detection's box, digit and confidence.
``--compare before.jsonl after.jsonl`` lists the frames whose readings differ (boxes and
digits exactly, confidences within ``--tolerance``) and exits 1 when any does.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def frames(digits: tuple[np.ndarray, np.ndarray], real_dir: Path | None, photos_dir: Path | None,
           quick: bool = False) -> Iterator[tuple[str, np.ndarray]]:
    """``(frame id, BGR frame)`` of every frame in the record, in a fixed order."""
    from benchmarks.accuracy import scene_set
    from benchmarks.real import _read, load_sets
    from benchmarks.scenes import render_scene
    from benchmarks.tuning import render_tuning_frames

    tuning = render_tuning_frames(digits, quick=quick)
    for name in ("scenes", "chains", "sheets"):
        for i, (frame, _) in enumerate(tuning[name]):
            yield f"tuning/{name}/{i}", frame
    for i, (seed, cfg) in enumerate(scene_set(10 if quick else 80, 2026, 640, 480)):
        yield f"reported/{i}", render_scene(seed, cfg, digits)[0]
    for photos in load_sets(real_dir, photos_dir).values():
        for p in photos:
            yield p.name, _read(p)


def record(rec: Any, items: Iterator[tuple[str, np.ndarray]], out: Path) -> int:
    """Write each frame's detections as one JSON line; returns the number of frames."""
    n = 0
    with open(out, "w") as f:
        for name, frame in items:
            dets = [[list(map(int, d.box)), int(d.digit), round(float(d.confidence), 6)] for d in rec.detect(frame)]
            f.write(json.dumps({"frame": name, "detections": dets}) + "\n")
            n += 1
    return n


def _load(path: Path) -> dict[str, list[Any]]:
    return {r["frame"]: r["detections"] for r in map(json.loads, path.read_text().splitlines())}


def compare(a: Path, b: Path, tolerance: float = 1e-4) -> list[str]:
    """The frames whose readings differ between two records, one line each."""
    ra, rb = _load(a), _load(b)
    out = [f"{name}: only in {a if name in ra else b}" for name in sorted(set(ra) ^ set(rb))]
    for name in ra.keys() & rb.keys():
        da, db = ra[name], rb[name]
        same = len(da) == len(db) and all(
            x[0] == y[0] and x[1] == y[1] and abs(x[2] - y[2]) <= tolerance for x, y in zip(da, db))
        if not same:
            spell = lambda ds: "".join(str(d[1]) for d in ds)  # noqa: E731
            out.append(f"{name}: {len(da)} detections '{spell(da)}' -> {len(db)} '{spell(db)}'")
    return sorted(out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.readings", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=None, help="write the record here (JSON lines)")
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), default=None,
                   help="compare two records instead of making one")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest confidence difference that counts as equal")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    p.add_argument("--real-dir", default=None, help="real photos folder (default: $REAL_DIR; skipped if unset)")
    p.add_argument("--photos-dir", default=None, help="older photos folder (default: $PHOTOS_DIR; skipped if unset)")
    p.add_argument("--quick", action="store_true", help="a tenth of the rendered frames (a smoke run)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if a.compare:
        before, after = (Path(x) for x in a.compare)
        for path in (before, after):
            if not path.is_file():
                print(f"error: record not found: {path}", file=sys.stderr)
                return 2
        diffs = compare(before, after, a.tolerance)
        for line in diffs:
            print(line)
        print(f"{len(diffs)} frames differ")
        return 1 if diffs else 0
    if not a.out:
        print("error: give --out FILE or --compare BEFORE AFTER", file=sys.stderr)
        return 2
    from benchmarks.real import data_dirs
    from realtime.recognizer import Recognizer
    from training.data import DataError, load_mnist

    try:
        images, labels = load_mnist("test", a.data_dir)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    real, photos = data_dirs(a.real_dir, a.photos_dir)
    rec = Recognizer.load()
    n = record(rec, frames((images.numpy(), labels.numpy()), real, photos, a.quick), Path(a.out))
    print(f"{n} frames written to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
