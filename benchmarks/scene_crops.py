"""Training crops as the live pipeline sees them: render scenes of MNIST *training*
digits, segment and normalize them exactly as ``realtime`` does, label each crop by the
rendered truth, and write them to an ``.npz`` that ``python -m training --scene-crops``
mixes into the training set.

Why: MNIST digits, however augmented, are not what the classifier meets live. A
camera crop has been blurred, JPEG-compressed, binarized, masked, cut out of a touching
pair and stroke-corrected before it is normalized, and those artefacts cost about three
points of label accuracy on rendered scenes (MNIST 99.6%, rendered crops 96.6%).

Only the MNIST training split is rendered, with frame seeds of their own; the accuracy
benchmark renders the *test* split. Labels come from the renderer: a crop is kept when
its box overlaps one digit's true box with IoU >= ``--min-iou`` (so merged pairs and
fragments are not labelled as one digit). Hypotheses made of digits' ink that are no
digit (a piece of one, a blob of two) are kept as ``negatives`` for the optional
"not a digit" class (``python -m training --negatives``). No scene holds the
renderer's letters and scribbles: the benchmark's "non-digit marks" stay unseen by
training.

Run: ``python -m benchmarks.scene_crops --out runs/scene_crops.npz --frames 2000``
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks.metrics import iou
from benchmarks.scenes import SceneConfig, frame_seed, render_scene

log = logging.getLogger(__name__)

# frame seeds are drawn from this stream so they never coincide with the benchmark's
SEED_STREAM = 424242

_worker: dict[str, Any] = {}


def frame_config(width: int, height: int, touching_share: float, rng: np.random.Generator) -> SceneConfig:
    """The config of a mined frame: random conditions, and in a share of frames numbers
    whose digits touch."""
    cfg = SceneConfig(width=width, height=height)
    if rng.random() < touching_share:
        cfg = replace(cfg, touching_prob=0.6, group_prob=0.9)
    return cfg


def _covered(a: Sequence[int], b: Sequence[int]) -> float:
    """Share of box ``b`` that box ``a`` covers."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / max(b[2] * b[3], 1)


def mine_frame(rec: Any, frame: np.ndarray, truths: Sequence[Any], min_iou: float = 0.75,
               max_neg_iou: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pipeline crops of one frame: ``(images uint8 [N,28,28], labels [N], negatives
    uint8 [M,28,28])``. Every hypothesis the recognizer would classify (the candidates
    and the stretches of cut lattices) is considered.

    A hypothesis is labelled with a digit when it overlaps that digit's box by IoU >=
    ``min_iou``. It is a negative ("not a digit") when it is made of digits' ink but is
    no digit: a piece of one (IoU < ``max_neg_iou`` with every digit), or a blob that
    holds most of two or more digits. Those are the wrong readings a touching blob
    offers; in between (a digit with a sliver of its neighbour) nothing is kept."""
    ink, cands = rec.candidates(frame)
    crops = rec.hypotheses(cands)[0]
    pos, labels, neg = [], [], []
    for c in crops:
        scores = [iou(c.box, t.box) for t in truths]
        best = int(np.argmax(scores)) if scores else -1
        if best >= 0 and scores[best] >= min_iou:
            pos.append(c)
            labels.append(truths[best].label)
            continue
        # a thin upright piece is a "1" to anyone who sees only the piece: teaching it as
        # no digit would only make real 1s doubtful
        if c.box[2] < 0.4 * c.box[3]:
            continue
        covered = [_covered(c.box, t.box) for t in truths]
        if sum(v >= 0.6 for v in covered) >= 2 or (any(v > 0.1 for v in covered) and max(scores) < max_neg_iou):
            neg.append(c)

    def norm(cs: list[Any]) -> np.ndarray:
        if not cs:
            return np.zeros((0, rec.size, rec.size), np.uint8)
        return np.clip(rec.crops(ink, cs) * 255 + 0.5, 0, 255).astype(np.uint8)
    return norm(pos), np.asarray(labels, np.int64), norm(neg)


def _init(weights: str | None, data_dir: str | None, overrides: dict[str, float]) -> None:
    import cv2

    from realtime.recognizer import Recognizer
    from training.data import load_mnist

    cv2.setNumThreads(1)
    images, labels = load_mnist("train", data_dir)
    _worker["digits"] = (images.numpy(), labels.numpy())
    rec = Recognizer.load(weights, threads=1)
    rec.segment_config = replace(rec.segment_config, **overrides)
    _worker["rec"] = rec


def _one(job: tuple[int, SceneConfig, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    seed, cfg, min_iou = job
    frame, truths, _ = render_scene(seed, cfg, _worker["digits"])
    return mine_frame(_worker["rec"], frame, truths, min_iou=min_iou)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scene_crops", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output .npz (images: uint8 [N, 28, 28], white ink on black; labels: [N]; negatives: uint8 [M, 28, 28])")
    p.add_argument("--frames", type=int, default=2000, help="scenes to render (~30 digits each; default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the frame stream (default 0)")
    p.add_argument("--width", type=int, default=640, help="frame width (default 640)")
    p.add_argument("--height", type=int, default=480, help="frame height (default 480)")
    p.add_argument("--touching-share", type=float, default=0.25,
                   help="share of frames whose numbers have touching digits (default 0.25)")
    p.add_argument("--min-iou", type=float, default=0.75,
                   help="a crop is labelled with a digit when its box overlaps that digit's by this IoU (default 0.75)")
    p.add_argument("--lattice-from", type=float, default=None, metavar="ASPECT",
                   help="blob aspect (w/h) from which cut lattices are tried (default: the live setting, "
                        "SegmentConfig.split_min_aspect)")
    p.add_argument("--part-min-height", type=float, default=None, metavar="FRAC",
                   help="a lattice part spans at least this share of its blob's height (default: the live "
                        "setting; the shipped model's crops used 0.4)")
    p.add_argument("--weights", default=None, help="checkpoint whose recognizer segments (default: assets/)")
    p.add_argument("--data-dir", default=os.environ.get("MNIST_DIR"),
                   help="MNIST folder (default: $MNIST_DIR, else the training default)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes (default 2)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from tqdm import tqdm

    overrides = {k: v for k, v in (("split_min_aspect", args.lattice_from),
                                    ("part_min_height", args.part_min_height)) if v is not None}
    rng = np.random.default_rng([SEED_STREAM, args.seed])
    jobs = [(frame_seed(SEED_STREAM + args.seed, i), frame_config(args.width, args.height, args.touching_share, rng),
             args.min_iou) for i in range(args.frames)]
    try:
        ctx = mp.get_context("fork")
        with ctx.Pool(args.workers, initializer=_init, initargs=(args.weights, args.data_dir, overrides)) as pool:
            results = list(tqdm(pool.imap(_one, jobs, chunksize=8), total=len(jobs), desc="scenes", unit="frame"))
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    images = np.concatenate([r[0] for r in results])
    labels = np.concatenate([r[1] for r in results])
    negatives = np.concatenate([r[2] for r in results])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, images=images, labels=labels, negatives=negatives)
    os.replace(tmp, out)
    counts = np.bincount(labels, minlength=10)
    print(f"{len(images)} labelled crops ({' '.join(str(int(c)) for c in counts)} per digit), "
          f"{len(negatives)} negatives (pieces of digits, merged digits) from {args.frames} frames -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
