"""The tuning scenes: where the live view's readers and constants are chosen.

Every reader and threshold since the sixth session was chosen on these rendered sets,
never on the reported seed-2026 set (``benchmarks.accuracy``) or the real photos:

- the fixed-set recipe (``benchmarks.accuracy.scene_set``) on seeds 7, 8 and 9, with
  the digits in its touching frames counted on their own;
- chains of touching digits: ``SceneConfig.clean(touching_prob=1, group_prob=1)`` on
  seeds 100-199;
- distractor sheets: script letters, scribbles, dots and dashes among numbers on
  clean paper, seeds 100-129 (precision).

All are MNIST *test* digits. The frames are rendered once, then read under each setting
asked for, so a sweep compares settings on identical frames::

    MNIST_DIR=../shared/data/mnist .venv/bin/python -m benchmarks.tuning \\
        --seq-weights runs/sequences/model.pt --set split.seq_weight=0,0.3,1

Each setting is a recognizer of its own (``realtime.recognizer.configure``), sharing
the loaded readers; the shipped config is never changed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.accuracy import scene_set
from benchmarks.metrics import Counts, score_frame
from benchmarks.scenes import SceneConfig, render_scene, render_sheet_with_distractors

log = logging.getLogger(__name__)

SCENE_SEEDS = (7, 8, 9)
CHAIN_SEEDS = range(100, 200)
SHEET_SEEDS = range(100, 130)


def render_tuning_frames(digits: tuple[np.ndarray, np.ndarray], quick: bool = False,
                         ) -> dict[str, list[tuple[np.ndarray, list[Any]]]]:
    """The tuning frames and their truths, by set: ``scenes`` (seeds 7-9),
    ``touching`` (the touching frames among them), ``chains``, ``sheets``. ``quick``:
    a tenth of each, for a smoke run."""
    step = 10 if quick else 1
    scenes, touching = [], []
    for seed in SCENE_SEEDS:
        for i, (fseed, cfg) in enumerate(scene_set(80, seed, 640, 480)[::step]):
            frame, truths, _ = render_scene(fseed, cfg, digits)
            scenes.append((frame, truths))
            if cfg.touching_prob > 0:
                touching.append((frame, truths))
    chains = [render_scene(s, SceneConfig.clean(touching_prob=1.0, group_prob=1.0), digits)[:2]
              for s in list(CHAIN_SEEDS)[::step]]
    sheets = [render_sheet_with_distractors(s, config=SceneConfig.clean(), digits=digits)[:2]
              for s in list(SHEET_SEEDS)[::step]]
    return {"scenes": scenes, "touching": touching, "chains": chains, "sheets": sheets}


def evaluate(rec: Any, frames: dict[str, list[tuple[np.ndarray, list[Any]]]]) -> dict[str, dict[str, float]]:
    """Counts per tuning set for one recognizer; the touching frames are read once, as
    part of the scenes."""
    out: dict[str, dict[str, float]] = {}
    touching_ids = {id(f) for f, _ in frames["touching"]}
    touching = Counts()
    for name in ("scenes", "chains", "sheets"):
        total = Counts()
        for frame, truths in frames[name]:
            c = score_frame(rec.detect(frame), truths)
            total += c
            if name == "scenes" and id(frame) in touching_ids:
                touching += c
        out[name] = total.as_dict()
    out["touching"] = touching.as_dict()
    return out


def _settings(pairs: Sequence[str]) -> list[dict[str, str]]:
    """``stage.field=v1,v2`` options as the grid of every combination."""
    names, values = [], []
    for item in pairs:
        name, _, vals = item.partition("=")
        if not name or not vals:
            raise ValueError(f"--set wants STAGE.FIELD=V1,V2,...; got {item!r}")
        names.append(name)
        values.append(vals.split(","))
    return [dict(zip(names, combo)) for combo in itertools.product(*values)] or [{}]


def _row(label: str, r: dict[str, dict[str, float]]) -> str:
    s, t, c, d = r["scenes"], r["touching"], r["chains"], r["sheets"]
    return (f"{label:<28} scenes read {s['read_correctly']:.2%} prec {s['precision']:.2%} | touching "
            f"{int(t['correct'])}/{int(t['true_digits'])} ({t['read_correctly']:.2%}) | chains "
            f"{c['read_correctly']:.2%} prec {c['precision']:.2%} | sheets prec {d['precision']:.2%} "
            f"recall {d['recall']:.2%}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tuning", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--weights", default=None, help="digit checkpoint (default: $DIGITS_WEIGHTS or assets/digits.pt)")
    p.add_argument("--pair-weights", default=None,
                   help="pair reader (default: $DIGITS_PAIR_WEIGHTS or assets/pairs.pt; '' for none)")
    p.add_argument("--seq-weights", default=None,
                   help="number reader (default: $DIGITS_SEQ_WEIGHTS or assets/sequences.pt; '' for none)")
    p.add_argument("--set", action="append", default=[], metavar="STAGE.FIELD=V1,V2",
                   help="a recognizer setting (e.g. split.seq_weight, segment.line_frac) and the values to try "
                        "(repeatable: every combination)")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    p.add_argument("--quick", action="store_true", help="a tenth of each set (a smoke run, not for choosing)")
    p.add_argument("--json", default=None, help="also write the results here as JSON")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from realtime.recognizer import Recognizer, configure
    from training.checkpoint import CheckpointError
    from training.data import DataError, load_mnist

    try:
        grid = _settings(a.set)
        configs = [configure(settings=[f"{k}={v}" for k, v in setting.items()]) for setting in grid]
        rec = Recognizer.load(a.weights, pair_weights=a.pair_weights, seq_weights=a.seq_weights)
        images, labels = load_mnist("test", a.data_dir)
    except (ValueError, CheckpointError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    frames = render_tuning_frames((images.numpy(), labels.numpy()), quick=a.quick)
    print(f"rendered {sum(len(v) for k, v in frames.items() if k != 'touching')} frames in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    results = []
    for setting, config in zip(grid, configs):
        r = evaluate(rec.with_config(config), frames)
        label = " ".join(f"{k}={v}" for k, v in setting.items()) or "as shipped"
        print(_row(label, r), flush=True)
        results.append({"setting": setting, **r})
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"weights": rec.weights_path,
                                            "seq_weights": None if rec.seq_backend is None else a.seq_weights,
                                            "quick": a.quick, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
