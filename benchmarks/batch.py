"""Files per second of the batch job (realtime.batch) for 1 and 2 local workers and on Ray.

    python -m benchmarks.batch $REAL_DIR $PHOTOS_DIR --repeats 3 --out benchmarks/results/batch.json

Each configuration reads every input into a fresh results folder; the configurations
take turns within a repeat (this VM's speed drifts between runs), and the medians are
reported. The rate is the job's own: files after the first worker is ready, over the
seconds since then (model loading is reported apart). ``--ray`` adds a local Ray instance
with 2 actors when Ray is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parent.parent


def run_once(sources: Sequence[str], extra: Sequence[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "realtime.batch", *sources, "--out", tmp, "--no-progress", *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if proc.returncode != 0:
            raise SystemExit(f"error: {' '.join(cmd)} failed: {proc.stderr.strip().splitlines()[-1:]}")
        return json.loads((Path(tmp) / "summary.json").read_text())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.batch", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("sources", nargs="+", help="folders, files or globs to read (as for realtime.batch)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each configuration (medians reported)")
    p.add_argument("--ray", action=argparse.BooleanOptionalAction, default=True,
                   help="also time a local Ray instance with 2 actors (skipped when Ray is not installed)")
    p.add_argument("--out", default=None, help="write the figures here as JSON")
    a = p.parse_args(argv)
    if a.repeats < 1:
        p.error("--repeats must be >= 1")
    configs = {"1 worker": ["--workers", "1"], "2 workers": ["--workers", "2"]}
    if a.ray and importlib.util.find_spec("ray") is not None:
        configs["Ray local, 2 actors"] = ["--workers", "2", "--ray", "local"]
    runs: dict[str, list[dict]] = {name: [] for name in configs}
    for r in range(a.repeats):
        for name, extra in configs.items():
            s = run_once(a.sources, extra)
            runs[name].append(s)
            print(f"repeat {r + 1}/{a.repeats} {name}: {s['files_per_s']:.1f} files/s "
                  f"({s['files']} files, load {s['load_seconds']:.1f} s)", file=sys.stderr)
    base = statistics.median(s["files_per_s"] for s in runs["1 worker"])
    table = {}
    print(f"{'configuration':<22} {'files/s':>8} {'vs 1':>6} {'load s':>7}")
    for name, ss in runs.items():
        rate = statistics.median(s["files_per_s"] for s in ss)
        load = statistics.median(s["load_seconds"] for s in ss)
        table[name] = {"files_per_s": round(rate, 2), "ratio": round(rate / base, 3), "load_s": round(load, 2),
                       "files": ss[0]["files"], "frames": ss[0]["frames"], "repeats": len(ss)}
        print(f"{name:<22} {rate:>8.1f} {rate / base:>6.2f} {load:>7.1f}")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"sources": a.sources, "results": table}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
