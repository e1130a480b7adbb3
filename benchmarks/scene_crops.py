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

With ``--pairs`` it mines the pair reader's inputs instead: every stretch of a blob the
live view would ask the pair reader about, labelled a pair when it holds exactly two
whole digits (a cut anywhere in the overlap with a neighbour allowed) and no pair when
it holds three digits or more, or one; near-pairs are left out (:func:`pair_label`).
Composed pairs of MNIST digits teach the reader what a pair is; these show it the live
view's stretches of touching numbers, where three digits squeezed into the width of two
are the commonest wrong reading (``python -m training.pairs --scene-pairs``). Tried in
the twelfth session, the fine-tuned reader read fewer touching digits on the tuning
scenes than the shipped one (assets/MODEL_CARD.md).

Run: ``python -m benchmarks.scene_crops --out runs/scene_crops.npz --frames 2000``
or ``python -m benchmarks.scene_crops --pairs --touching-share 1 --out runs/scene_pairs.npz --frames 3000``
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
from realtime import split
from realtime.readers import DigitReadings
from training.fields import PAIR_WIDTH, wide_fields
from training.pairs import SCENE_PAIR_KEYS  # the arrays of a --pairs .npz

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
    page = rec.page(frame)
    # read as if no blob were sure: every wide blob's lattice is mined
    unsure = DigitReadings(np.zeros((len(page.blobs), 11), np.float32))
    crops = split.refine(split.propose(page.blobs, rec.config.split), unsure, rec.config.split, pairs=False).crops
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
        return np.clip(rec.digit_reader.fields(page.ink, cs) * 255 + 0.5, 0, 255).astype(np.uint8)
    return norm(pos), np.asarray(labels, np.int64), norm(neg)


def pair_label(part: Sequence[int], truths: Sequence[Any], tol: float = 0.1,
               ) -> tuple[int, int, int, float, float]:
    """The pair reader's truth for a stretch of a blob (box ``part``): ``(left label,
    right label, is pair, left end, right start)``, ends as fractions of its width.

    The digits of the stretch's row (those it spans half the height of), in order, are
    taken two neighbours at a time; the stretch is that pair when each of its sides is
    where a cut between the pair and the digit beyond could fall: from the pair's own
    outer side to the far side of the overlap with that digit, ``tol`` of the digits'
    height either way. A stretch holding the centres of three digits or more, or of one,
    is no pair. Labels -2, no truth to give: the stretch holds none of a digit (a
    shadow's edge, a smudge), or two digits' centres but not as a clean pair (a pair and
    a piece of the next). Such near-pairs are left to the chain of cuts, which weighs
    them against the other stretches: labelling them no pair made a fine-tuned reader
    shy of pairs (touching digits read on the tuning scenes fell from 824 to 783 of 871)."""
    x, y, w, h = part
    row = sorted((t for t in truths if min(y + h, t.box[1] + t.box[3]) - max(y, t.box[1]) >= 0.5 * t.box[3]),
                 key=lambda t: t.box[0] + t.box[2] / 2)
    if not any(min(x + w, t.box[0] + t.box[2]) > max(x, t.box[0]) for t in row):
        return -2, -2, 0, 0.0, 0.0
    for k in range(len(row) - 1):
        a, b = row[k], row[k + 1]
        slack = tol * max(a.box[3], b.box[3])
        a_left, b_right = a.box[0], b.box[0] + b.box[2]
        # how far a cut may stray into a neighbour that overlaps the pair
        beyond_left = max([a_left] + ([row[k - 1].box[0] + row[k - 1].box[2]] if k > 0 else []))
        beyond_right = min([b_right] + ([row[k + 2].box[0]] if k + 2 < len(row) else []))
        if a_left - slack <= x <= beyond_left + slack and beyond_right - slack <= x + w <= b_right + slack:
            end = float(np.clip((a.box[0] + a.box[2] - x) / w, 0, 1))
            start = float(np.clip((b.box[0] - x) / w, 0, 1))
            return a.label, b.label, 1, end, start
    centres = sum(x <= t.box[0] + t.box[2] / 2 < x + w for t in row)
    # three digits or more read as two is the wrong reading to unteach; a stretch a
    # little off a pair's sides is left out (the chain of cuts weighs it against others)
    return (-1, -1, 0, 0.0, 0.0) if centres >= 3 or centres <= 1 else (-2, -2, 0, 0.0, 0.0)


def mine_pairs(rec: Any, frame: np.ndarray, truths: Sequence[Any]) -> tuple[np.ndarray, ...]:
    """The pair reader's inputs as the live view makes them in one frame, with their
    truth: ``(fields uint8 [N, 28, 56], left [N], right [N], is pair [N], ends [N, 2],
    is digits [N])``, one row per stretch the live view would ask the pair reader about
    (:func:`realtime.split.refine`; every blob the digit network is not sure of, whole,
    and the stretches of its cut lattice)."""
    page = rec.page(frame)
    # the digit network's reading of each blob, which decides the blobs it is sure of
    whole = rec.digit_reader.read(page.ink, page.blobs)
    plan = split.refine(split.propose(page.blobs, rec.config.split), whole, rec.config.split, pairs=True)
    parts = [plan.pair_crops[e.crop] for edges in plan.pair_edges.values() for e in edges]
    rows = [pair_label(p.box, truths) for p in parts]
    keep = [k for k, r in enumerate(rows) if r[0] != -2]
    parts, rows = [parts[k] for k in keep], [rows[k] for k in keep]
    fields = wide_fields(page.ink, [p.box for p in parts], [p.mask for p in parts], PAIR_WIDTH)
    r = np.asarray(rows, np.float64).reshape(-1, 5)
    return ((fields * 255 + 0.5).astype(np.uint8), r[:, 0].astype(np.int64), r[:, 1].astype(np.int64),
            r[:, 2].astype(np.float32), r[:, 3:5].astype(np.float32), np.ones(len(r), np.float32))


def _init(weights: str | None, data_dir: str | None, overrides: dict[str, float]) -> None:
    import cv2

    from realtime.recognizer import Recognizer, RecognizerConfig
    from realtime.split import SplitConfig
    from training.data import load_mnist

    cv2.setNumThreads(1)
    images, labels = load_mnist("train", data_dir)
    _worker["digits"] = (images.numpy(), labels.numpy())
    config = RecognizerConfig(split=replace(SplitConfig(), **overrides))
    _worker["rec"] = Recognizer.load(weights, threads=1, config=config)


def _one(job: tuple[int, SceneConfig, float, bool]) -> tuple[np.ndarray, ...]:
    seed, cfg, min_iou, for_pairs = job
    frame, truths, _ = render_scene(seed, cfg, _worker["digits"])
    if for_pairs:
        return mine_pairs(_worker["rec"], frame, truths)
    return mine_frame(_worker["rec"], frame, truths, min_iou=min_iou)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scene_crops", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output .npz (images: uint8 [N, 28, 28], white ink on black; labels: [N]; negatives: uint8 [M, 28, 28]; with --pairs: "
                   + ", ".join(SCENE_PAIR_KEYS) + ")")
    p.add_argument("--pairs", action="store_true",
                   help="mine the pair reader's inputs (every stretch the live view asks it about, labelled as a pair "
                        "of two whole digits or not) for python -m training.pairs --scene-pairs, instead of digit crops")
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
                        "SplitConfig.split_min_aspect)")
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
             args.min_iou, args.pairs) for i in range(args.frames)]
    try:
        ctx = mp.get_context("fork")
        with ctx.Pool(args.workers, initializer=_init, initargs=(args.weights, args.data_dir, overrides)) as pool:
            results = list(tqdm(pool.imap(_one, jobs, chunksize=8), total=len(jobs), desc="scenes", unit="frame"))
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    if args.pairs:
        arrays = [np.concatenate(a) for a in zip(*results)]
        np.savez_compressed(tmp, **dict(zip(SCENE_PAIR_KEYS, arrays)))
        os.replace(tmp, out)
        print(f"{len(arrays[0])} pair-reader inputs ({int(arrays[3].sum())} pairs of two whole digits) "
              f"from {args.frames} frames -> {out}")
        return 0
    images = np.concatenate([r[0] for r in results])
    labels = np.concatenate([r[1] for r in results])
    negatives = np.concatenate([r[2] for r in results])
    np.savez_compressed(tmp, images=images, labels=labels, negatives=negatives)
    os.replace(tmp, out)
    counts = np.bincount(labels, minlength=10)
    print(f"{len(images)} labelled crops ({' '.join(str(int(c)) for c in counts)} per digit), "
          f"{len(negatives)} negatives (pieces of digits, merged digits) from {args.frames} frames -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
