"""Train the pair reader: two touching digits read whole (see ``realtime.pairs``).

Training pairs are composed from MNIST *training* digits the way handwriting makes them
touch: each digit scaled to a common height (a little apart), slanted by the writer's
slant plus its own, stroke width varied, bottoms on one baseline, and pushed together
until their strokes overlap by a few pixels on some row (or nearly touch). Some crops
carry a sliver of a third digit at either side, cut by a vertical line through the
overlap, as the live view's cut lattice leaves them. Negatives teach the "is this a
pair" output: single digits, three or four digits, a pair with one digit cut in half,
and marks that are no digits at all (random scribbles, generated handwriting-like and
printed letters and words, whole or a stretch between two cuts; see
``training.negatives``), passed through MNIST's resolution as the digits are. The marks alone are
negatives of the "these are digits" output, which the live view uses to keep from
splitting words and letters that its cut lattice would read as 1s.

    python -m training.pairs --out runs/pairs            # about 40 min on 2 CPU cores
    python -m training.pairs --device cuda --workers 8   # minutes, with an NVIDIA GPU
    cp runs/pairs/model.pt assets/pairs.pt

A reader can also be fine-tuned (``--init``) with the stretches the live view asks it
about in rendered scenes mixed in (``--scene-pairs``, mined by ``python -m
benchmarks.scene_crops --pairs``). Tried in the twelfth session, it read fewer touching
digits on the tuning scenes than the shipped reader (assets/MODEL_CARD.md).

Settings: see ``--help``. The weights written are the last epoch's (no selection on
any test set); the held-out figures come from pairs of the last 5,000 training images,
which the training pairs never use.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from training.checkpoint import (CALIBRATION_IMAGES, MNIST_NORMALIZATION, CheckpointError, make_checkpoint,
                                 model_from_checkpoint, read_checkpoint, save_checkpoint)
from training.data import DataError, load_mnist, read_npz
from training.fields import PAIR_WIDTH, wide_field
from training.model import ModelConfig, build_model, count_parameters
from training.negatives import _letters, _printed, _scribble

log = logging.getLogger(__name__)

PAIR_CLASS_NAMES = [f"left {d}" for d in range(10)] + [f"right {d}" for d in range(10)] + [
    "pair", "left digit ends", "right digit starts", "digits"]
HELD_OUT = 5000  # the last training images: held-out pairs only
# What the crops are: a pair, one digit, three or four digits, a pair with a digit cut
# in half, marks. A reader trained with triples at 0.18 (pairs 0.42, singles 0.14, marks
# 0.18) read fewer touching digits on the tuning scenes, though three digits read as one
# pair is the commonest wrong reading there (assets/MODEL_CARD.md).
KIND_MIX = {"pair": 0.45, "single": 0.15, "triple": 0.10, "half": 0.08, "marks": 0.22}
MARK_MIX = {"scribble": 0.25, "handwritten": 0.4, "printed": 0.35}  # what the marks are
MARK_SCAN_HEIGHT = (14.0, 22.0)  # px: marks pass through MNIST's resolution (its digits are 20 px tall)


@dataclass
class ReaderSettings:
    """What training the pair reader and the number reader (``training.sequences``) share."""

    data_dir: str | None = None
    download: bool = False
    out: str = "runs/reader"
    samples: int = 500_000
    epochs: int = 7
    batch_size: int = 256
    lr: float = 2e-3
    widths: tuple[int, int, int] = (16, 32, 64)
    seed: int = 0
    threads: int = 2
    workers: int = 2


def reader_arguments(p: argparse.ArgumentParser, d: ReaderSettings, made: str) -> None:
    """The command-line options of :class:`ReaderSettings`; ``made``: what training
    composes ("crops", "numbers")."""
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR or ~/.cache/realtime-digits/mnist)")
    p.add_argument("--download", action="store_true", help="download MNIST when the folder lacks it")
    p.add_argument("--out", default=d.out, help=f"run folder; the weights go to OUT/model.pt (default {d.out})")
    p.add_argument("--samples", type=int, default=d.samples, help=f"training {made} composed (default {d.samples})")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"passes over them (default {d.epochs})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak AdamW learning rate (default {d.lr})")
    p.add_argument("--widths", type=int, nargs=3, default=list(d.widths),
                   help=f"channels of the three conv stages (default {' '.join(map(str, d.widths))})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"default {d.seed}")
    p.add_argument("--threads", type=int, default=d.threads, help=f"torch threads (default {d.threads})")
    p.add_argument("--workers", type=int, default=d.workers, help=f"processes composing {made} (default {d.workers})")


def reader_settings(a: argparse.Namespace, cls: type, **extra: Any) -> Any:
    """``cls`` (a :class:`ReaderSettings`) from parsed :func:`reader_arguments` and ``extra``."""
    return cls(data_dir=a.data_dir, download=a.download, out=a.out, samples=a.samples, epochs=a.epochs,
               batch_size=a.batch_size, lr=a.lr, widths=tuple(a.widths), seed=a.seed, threads=a.threads,
               workers=a.workers, **extra)


@dataclass
class PairSettings(ReaderSettings):
    out: str = "runs/pairs"
    device: str = "cpu"
    # .npz of the pair reader's inputs as the live view makes them on rendered scenes of
    # MNIST training digits (python -m benchmarks.scene_crops --pairs), mixed in
    scene_pairs: str | None = None
    # a reader's checkpoint to start from (fine-tuning) instead of random weights
    init: str | None = None


# --------------------------------------------------------------------------- synthesis


def _glyph(img: np.ndarray, rng: np.random.Generator, height: float, shear: float) -> np.ndarray | None:
    """One MNIST digit (white ink uint8) as handwriting at ``height`` px: scaled, slanted
    (``shear``: x shift per px up; negative leans right), a little rotated, its stroke
    thickened or thinned."""
    ys, xs = np.nonzero(img > 20)
    if len(ys) == 0:
        return None
    crop = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    s = height / crop.shape[0]
    w, h = max(1, int(round(crop.shape[1] * s))), max(1, int(round(height)))
    g = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    ang = math.radians(float(np.clip(rng.normal(0, 3), -8, 8)))
    # x' = x + shear * (y - h) (the bottom stays put), plus a small rotation about the centre
    c, si = math.cos(ang), math.sin(ang)
    m = np.array([[c, -si + shear, 0.0], [si, c, 0.0]])
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ m.T
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    m[:, 2] = -lo + 1
    size = (int(math.ceil(hi[0] - lo[0])) + 2, int(math.ceil(hi[1] - lo[1])) + 2)
    g = cv2.warpAffine(g, m, size, flags=cv2.INTER_LINEAR)
    k = int(rng.choice([0, 0, 0, 3, 3, 5, -3]))
    if k > 0:
        g = cv2.dilate(g, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    elif k < 0:
        thin = cv2.erode(g, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
        if int(thin.sum()) > 0.4 * int(g.sum()):
            g = thin
    ys, xs = np.nonzero(g > 20)
    if len(ys) == 0:
        return None
    return g[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _next_to(left: np.ndarray, left_dy: int, right: np.ndarray, right_dy: int, overlap: int) -> int:
    """x offset of ``right`` from ``left`` (bottoms on the baseline, shifted by ``dy``) so
    their strong ink overlaps by ``overlap`` px on some shared row (negative: a gap)."""
    la, ra = left >= 128, right >= 128
    need = None
    for r in np.nonzero(ra.any(axis=1))[0]:
        lr = r - right.shape[0] + right_dy + left.shape[0] - left_dy  # same baseline row in left
        if 0 <= lr < left.shape[0] and la[lr].any():
            n = int(np.nonzero(la[lr])[0].max()) + 1 - int(np.nonzero(ra[r])[0].min())
            need = n if need is None else max(need, n)
    if need is None:
        need = left.shape[1]
    return need - overlap


def _compose(glyphs: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Glyphs side by side, touching: ``(ink uint8, [(x0, x1) of each glyph's ink])``."""
    dys = [int(round(rng.uniform(-0.05, 0.05) * g.shape[0])) for g in glyphs]
    xs = [0]
    for i in range(1, len(glyphs)):
        overlap = int(rng.choice([-2, -1, 0, 1, 1, 2, 2, 3, 4]))
        xs.append(xs[-1] + _next_to(glyphs[i - 1], dys[i - 1], glyphs[i], dys[i], overlap))
    x_min = min(xs)
    xs = [x - x_min for x in xs]
    base = max(g.shape[0] - dy for g, dy in zip(glyphs, dys))
    tops = [base - g.shape[0] + dy for g, dy in zip(glyphs, dys)]
    y_min = min(tops)
    h = max(t - y_min + g.shape[0] for t, g in zip(tops, glyphs))
    w = max(x + g.shape[1] for x, g in zip(xs, glyphs))
    out = np.zeros((h, w), np.uint8)
    for g, x, t in zip(glyphs, xs, tops):
        region = out[t - y_min : t - y_min + g.shape[0], x : x + g.shape[1]]
        np.maximum(region, g, out=region)
    return out, [(x, x + g.shape[1]) for x, g in zip(xs, glyphs)]


def _cut(ink: np.ndarray, spans: list[tuple[int, int]], lo: int | None, hi: int | None,
         ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``ink`` with the columns before ``lo`` and from ``hi`` on erased, trimmed; spans moved."""
    ink = ink.copy()
    if lo is not None:
        ink[:, : max(lo, 0)] = 0
    if hi is not None:
        ink[:, hi:] = 0
    cols = np.nonzero(ink.max(axis=0) > 20)[0]
    rows = np.nonzero(ink.max(axis=1) > 20)[0]
    if len(cols) == 0:
        return ink[:0, :0], spans
    x0 = int(cols[0])
    ink = ink[rows[0] : rows[-1] + 1, x0 : cols[-1] + 1]
    return ink, [(a - x0, b - x0) for a, b in spans]


def _field(ink: np.ndarray, rng: np.random.Generator, height: float) -> np.ndarray:
    """A composed crop as the pair reader's uint8 input, defocused now and then (digits
    and marks alike, so blur tells the reader nothing)."""
    if rng.random() < 0.3:
        ink = cv2.GaussianBlur(ink, (0, 0), rng.uniform(0.4, 1.0) * height / 28)
    return (wide_field(ink, None, PAIR_WIDTH) * 255 + 0.5).astype(np.uint8)


def make_sample(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                ) -> tuple[np.ndarray, int, int, int, float, float, int] | None:
    """One training crop: ``(field uint8 [28, 56], left label, right label, is pair,
    left end, right start, is digits)`` (labels -1 and ends 0 for a non-pair; "is
    digits": the ink is handwritten digits only, whole or cut, one or several)."""
    height = float(np.exp(rng.uniform(np.log(16), np.log(64))))
    slant = rng.uniform(-0.3, 0.15)
    kind = rng.choice(list(KIND_MIX), p=list(KIND_MIX.values()))
    if kind == "marks":
        # no digits: a scribble stretched to a pair's width, or letters (handwritten or
        # printed), or a stretch of a word between two vertical cuts (as a cut lattice
        # leaves it)
        mark_kind = rng.choice(list(MARK_MIX), p=list(MARK_MIX.values()))
        if mark_kind == "scribble":
            mark = _scribble(rng)
            mark = cv2.resize(mark, (int(mark.shape[1] * rng.uniform(1.0, 2.5)), mark.shape[0]))
        elif mark_kind == "handwritten":
            mark = _letters(rng)
        else:
            mark = _printed(rng)
        ink = (np.clip(mark, 0, 1) * 255).astype(np.uint8)
        ink, _ = _cut(ink, [], None, None)
        if ink.size and rng.random() < 0.3 and ink.shape[1] > ink.shape[0]:
            w = int(ink.shape[1] * rng.uniform(0.35, 0.8))
            lo = int(rng.integers(0, ink.shape[1] - w + 1))
            ink, _ = _cut(ink, [], lo, lo + w)
            if ink.shape[1] < 0.6 * ink.shape[0]:
                return None  # a lone stroke: a 1 as much as a piece of a letter
        if ink.size == 0 or ink.shape[0] < 4:
            return None
        # Through MNIST's resolution first, as the digits come: a 20-px scan scaled up is
        # soft, a mark drawn at 80 px and scaled down is crisp, and a reader trained on
        # both learned to call crisp ink letters and soft ink digits; through a camera
        # everything is soft, and it passed most letters.
        low = rng.uniform(*MARK_SCAN_HEIGHT)
        ink = cv2.resize(ink, (max(1, round(ink.shape[1] * low / ink.shape[0])), round(low)),
                         interpolation=cv2.INTER_AREA)
        ink = cv2.resize(ink, (max(1, int(ink.shape[1] * height / ink.shape[0])), int(height)),
                         interpolation=cv2.INTER_LINEAR)
        return _field(ink, rng, height), -1, -1, 0, 0.0, 0.0, 0
    # three or four digits: a long touching number the live view may see whole
    n = {"pair": 2, "single": 1, "triple": int(rng.integers(3, 5)), "half": 2}[str(kind)]
    left_ctx, right_ctx = rng.random() < 0.3, rng.random() < 0.3
    idx = rng.integers(len(images), size=n + 2)
    glyphs = []
    for i in idx:
        g = _glyph(images[i], rng, height * rng.uniform(0.9, 1.1), slant + rng.normal(0, 0.05))
        if g is None:
            return None
        glyphs.append(g)
    core = list(range(1, n + 1))  # glyph 0 and n + 1 are the possible context slivers
    use = ([0] if left_ctx else []) + core + ([n + 1] if right_ctx else [])
    ink, spans = _compose([glyphs[i] for i in use], rng)
    first = 1 if left_ctx else 0
    core_spans = spans[first : first + n]
    lo = hi = None
    if left_ctx:
        # a vertical cut somewhere in the overlap of the sliver and the first digit
        a, b = sorted((core_spans[0][0], spans[0][1]))
        lo = int(rng.integers(a - 1, b + 2))
    if right_ctx:
        a, b = sorted((spans[-1][0], core_spans[-1][1]))
        hi = int(rng.integers(a - 1, b + 2))
    if kind == "half":
        # one of the two digits cut through its middle: not a pair of whole digits
        if rng.random() < 0.5:
            x0, x1 = core_spans[1]
            hi = int(x0 + rng.uniform(0.3, 0.6) * (x1 - x0))
        else:
            x0, x1 = core_spans[0]
            lo = int(x0 + rng.uniform(0.4, 0.7) * (x1 - x0))
    ink, spans = _cut(ink, spans, lo, hi)
    if ink.size == 0 or ink.shape[0] < 4 or ink.shape[1] < 2:
        return None
    field = _field(ink, rng, height)
    if kind != "pair":
        return field, -1, -1, 0, 0.0, 0.0, 1
    core_spans = spans[first : first + 2]
    w = ink.shape[1]
    end = float(np.clip(core_spans[0][1] / w, 0, 1))
    start = float(np.clip(core_spans[1][0] / w, 0, 1))
    a, b = (int(labels[idx[i]]) for i in core)
    return field, a, b, 1, end, start, 1


def _make_chunk(args: tuple[np.ndarray, np.ndarray, int, int]) -> tuple[np.ndarray, ...]:
    images, labels, n, seed = args
    rng = np.random.default_rng(seed)
    fields, rows = [], []
    while len(fields) < n:
        s = make_sample(images, labels, rng)
        if s is not None:
            fields.append(s[0])
            rows.append(s[1:])
    r = np.array(rows, np.float64)
    return (np.stack(fields), r[:, 0].astype(np.int64), r[:, 1].astype(np.int64),
            r[:, 2].astype(np.float32), r[:, 3:5].astype(np.float32), r[:, 5].astype(np.float32))


def pair_calibration(images: np.ndarray, labels: np.ndarray, n: int = CALIBRATION_IMAGES,
                     seed: int = 0) -> torch.Tensor:
    """``n`` composed training crops (uint8 [n, 28, 56]) for the int8 quantization of the
    pair reader, as :func:`training.checkpoint.calibration_images` for the digit net."""
    return torch.from_numpy(make_pairs(images, labels, n, seed)[0])


def make_pairs(images: np.ndarray, labels: np.ndarray, n: int, seed: int, workers: int = 1,
               ) -> tuple[np.ndarray, ...]:
    """``n`` crops: ``(fields uint8 [n, 28, 56], left [n], right [n], is pair [n], ends [n, 2],
    is digits [n])``."""
    return compose_chunks(_make_chunk, images, labels, n, seed, workers, max_chunks=64)


def compose_chunks(make_chunk: Any, images: np.ndarray, labels: np.ndarray, n: int, seed: int, workers: int = 1,
                   max_chunks: int | None = None) -> tuple[np.ndarray, ...]:
    """``n`` composed samples from ``make_chunk((images, labels, count, seed))`` in chunks
    of about 2,000 (at most ``max_chunks``), each with its own seed so the result does not
    depend on ``workers``; each of the chunks' arrays concatenated."""
    chunks = max(1, n // 2000 if max_chunks is None else min(max_chunks, n // 2000))
    jobs = [(images, labels, n // chunks + (1 if i < n % chunks else 0), seed * 1000 + i) for i in range(chunks)]
    if workers > 1:
        with Pool(workers) as pool:
            parts = pool.map(make_chunk, jobs)
    else:
        parts = [make_chunk(j) for j in jobs]
    return tuple(np.concatenate(p) for p in zip(*parts))


# --------------------------------------------------------------------------- training


def pair_loss(out: torch.Tensor, left: torch.Tensor, right: torch.Tensor, is_pair: torch.Tensor,
              ends: torch.Tensor, is_digits: torch.Tensor) -> torch.Tensor:
    pos = is_pair > 0.5
    loss = F.binary_cross_entropy_with_logits(out[:, 20], is_pair)
    loss = loss + F.binary_cross_entropy_with_logits(out[:, 23], is_digits)
    if pos.any():
        loss = loss + F.cross_entropy(out[pos, :10], left[pos], label_smoothing=0.05)
        loss = loss + F.cross_entropy(out[pos, 10:20], right[pos], label_smoothing=0.05)
        loss = loss + 10.0 * F.smooth_l1_loss(torch.sigmoid(out[pos, 21:23]), ends[pos], beta=0.05)
    return loss


@torch.inference_mode()
def pair_metrics(model: torch.nn.Module, data: tuple[np.ndarray, ...], batch: int = 1024) -> dict[str, float]:
    """Held-out figures: both digits right on pairs, pair / non-pair told apart, the
    mean error of the split ends (fraction of width), and digits / marks told apart."""
    fields, left, right, is_pair, ends, is_digits = data
    model.eval()
    outs = []
    mean, std = MNIST_NORMALIZATION["mean"], MNIST_NORMALIZATION["std"]
    device = next(model.parameters()).device
    for i in range(0, len(fields), batch):
        x = (torch.from_numpy(fields[i : i + batch]).to(device).float() / 255 - mean) / std
        outs.append(model(x[:, None]).cpu())
    out = torch.cat(outs).numpy()
    pos = is_pair > 0.5
    said_pair = out[:, 20] > 0
    both = (out[pos, :10].argmax(1) == left[pos]) & (out[pos, 10:20].argmax(1) == right[pos])
    err = np.abs(1 / (1 + np.exp(-out[pos, 21:23])) - ends[pos]).mean()
    digits, said_digits = is_digits > 0.5, out[:, 23] > 0
    return {"pair_read": float(both.mean()), "pair_found": float(said_pair[pos].mean()),
            "non_pair_rejected": float((~said_pair[~pos]).mean()), "split_error": float(err),
            "digits_kept": float(said_digits[digits].mean()), "marks_rejected": float((~said_digits[~digits]).mean())}


SCENE_PAIR_KEYS = ("fields", "left", "right", "is_pair", "ends", "is_digits")


def load_scene_pairs(path: str | Path) -> tuple[np.ndarray, ...]:
    """Mined pair-reader inputs (``python -m benchmarks.scene_crops --pairs``), in the
    order :func:`make_pairs` returns its crops."""
    z = read_npz(path, "scene-pairs", SCENE_PAIR_KEYS)
    arrays = tuple(z[k] for k in SCENE_PAIR_KEYS)
    if arrays[0].ndim != 3 or arrays[0].shape[1:] != (28, 56) or any(len(a) != len(arrays[0]) for a in arrays):
        raise DataError(f"{path}: expected fields [N, 28, 56] and one label row per field")
    if len(arrays[1]) and (min(arrays[1].min(), arrays[2].min()) < -1 or max(arrays[1].max(), arrays[2].max()) > 9):
        raise DataError(f"{path}: digit labels outside -1..9")
    return (arrays[0].astype(np.uint8), arrays[1].astype(np.int64), arrays[2].astype(np.int64),
            arrays[3].astype(np.float32), arrays[4].astype(np.float32), arrays[5].astype(np.float32))


def load_start(path: str | Path, config: ModelConfig) -> dict[str, torch.Tensor]:
    """The weights of a pair reader's checkpoint to fine-tune, checked against ``config``."""
    try:
        model = model_from_checkpoint(read_checkpoint(path), path)
    except CheckpointError as err:
        raise DataError(f"--init: {err}") from err
    if model.config != config:
        raise DataError(f"--init {path}: a {model.config.to_dict()} network, not {config.to_dict()}")
    return model.state_dict()


def run(settings: PairSettings) -> dict[str, Any]:
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    images, labels = load_mnist("train", settings.data_dir, download=settings.download)
    images, labels = images.numpy(), labels.numpy()
    train_imgs, train_lbls = images[:-HELD_OUT], labels[:-HELD_OUT]
    config = ModelConfig(arch="pairnet", widths=tuple(settings.widths), num_classes=len(PAIR_CLASS_NAMES))
    # read before the minutes of composing, so a wrong path fails at once
    mined = load_scene_pairs(settings.scene_pairs) if settings.scene_pairs else None
    start = load_start(settings.init, config) if settings.init else None
    t0 = time.time()
    print(f"composing {settings.samples} training crops and 10000 held-out ones ...", flush=True)
    data = make_pairs(train_imgs, train_lbls, settings.samples, settings.seed, settings.workers)
    held = make_pairs(images[-HELD_OUT:], labels[-HELD_OUT:], 10000, settings.seed + 1, settings.workers)
    print(f"  done in {time.time() - t0:.0f} s", flush=True)
    if mined is not None:
        # the calibration images stay composed ones: data[0][:CALIBRATION_IMAGES] below
        data = tuple(np.concatenate([a, b]) for a, b in zip(data, mined))
        print(f"  + {len(mined[0])} scene crops ({int(mined[3].sum())} pairs) from {settings.scene_pairs}", flush=True)
    device = torch.device(settings.device)
    model = build_model(config)
    if start is not None:
        model.load_state_dict(start)
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-4)
    steps = settings.epochs * math.ceil(len(data[0]) / settings.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=steps, pct_start=0.15)
    fields = torch.from_numpy(data[0]).to(device)
    tensors = [torch.from_numpy(a).to(device) for a in data[1:]]
    mean, std = MNIST_NORMALIZATION["mean"], MNIST_NORMALIZATION["std"]
    out_dir = Path(settings.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    history = []
    for epoch in range(1, settings.epochs + 1):
        model.train()
        perm = torch.randperm(len(fields)).to(device)
        total, seen = 0.0, 0
        bar = tqdm(range(0, len(perm), settings.batch_size), desc=f"epoch {epoch}/{settings.epochs}", unit="batch")
        for i in bar:
            b = perm[i : i + settings.batch_size]
            x = fields[b].float()
            # a pixel or two of shift either way, so the heads do not rely on exact centring
            dx, dy = (int(v) for v in torch.randint(-2, 3, (2,)))
            x = torch.roll(x, shifts=(dy, dx), dims=(1, 2))
            x = (x / 255 - mean) / std
            out = model(x[:, None])
            loss = pair_loss(out, *(t[b] for t in tensors))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(b)
            seen += len(b)
            bar.set_postfix(loss=f"{total / seen:.3f}")
        m = pair_metrics(model, held)
        m.update(epoch=epoch, train_loss=total / seen, elapsed_s=round(time.time() - t0, 1))
        history.append(m)
        print(json.dumps(m), flush=True)
    model.cpu()
    metrics = {**history[-1], "parameters": count_parameters(model), "held_out_pairs": len(held[0])}
    write_reader(out_dir, model, settings, PAIR_CLASS_NAMES, data[0], history, metrics)
    return metrics


def write_reader(out_dir: Path, model: torch.nn.Module, settings: Any, class_names: list[str],
                 fields: np.ndarray, history: list[dict[str, Any]], metrics: dict[str, Any]) -> None:
    """A trained reader's run folder: ``model.pt`` (written atomically, with its settings,
    metrics and the first CALIBRATION_IMAGES training ``fields`` as int8 calibration
    images) and every epoch's held-out figures in ``metrics.json``. Shared by the pair
    reader and the number reader (``training.sequences``)."""
    ckpt = make_checkpoint(model, metrics=metrics, settings={k: (list(v) if isinstance(v, tuple) else v)
                                                              for k, v in asdict(settings).items()},
                           class_names=class_names, calibration=torch.from_numpy(fields[:CALIBRATION_IMAGES]))
    save_checkpoint(ckpt, out_dir / "model.pt")
    (out_dir / "metrics.json").write_text(json.dumps(history, indent=1))


def parse_args(argv: Sequence[str] | None = None) -> PairSettings:
    d = PairSettings()
    p = argparse.ArgumentParser(prog="python -m training.pairs", description=__doc__.split("\n\n")[0])
    reader_arguments(p, d, "crops")
    p.add_argument("--device", default=d.device, help=f"where the network trains: cpu, or cuda on a machine with an "
                   f"NVIDIA GPU (the crops are composed on the CPU either way; default {d.device})")
    p.add_argument("--scene-pairs", default=None, metavar="NPZ",
                   help="also train on the pair reader's inputs mined from rendered scenes of MNIST training digits "
                        "(made by python -m benchmarks.scene_crops --pairs; default: composed crops only)")
    p.add_argument("--init", default=None, metavar="CKPT",
                   help="start from this pair reader's weights (fine-tuning; same --widths) instead of random ones")
    a = p.parse_args(argv)
    if a.samples < 100 or a.epochs < 1 or a.batch_size < 1:
        p.error("--samples must be >= 100, --epochs and --batch-size >= 1")
    device_kind = a.device.split(":")[0]
    if device_kind not in ("cpu", "cuda"):
        p.error(f"--device {a.device}: expected cpu or cuda")
    if device_kind == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {a.device}: PyTorch sees no CUDA GPU here (use --device cpu)")
    return reader_settings(a, PairSettings, device=a.device, scene_pairs=a.scene_pairs, init=a.init)


def main(argv: Sequence[str] | None = None) -> int:
    return run_reader_cli(parse_args(argv), run)


def run_reader_cli(settings: Any, run: Any) -> int:
    """A reader's training CLI around ``run(settings)``: SIGTERM stops it like Ctrl-C (no
    weights written, exit 130), bad data is one line on stderr (exit 2), success says
    where the weights went. Shared by the pair reader and the number reader."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        metrics = run(settings)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no weights written", file=sys.stderr)
        return 130
    print(f"wrote {Path(settings.out) / 'model.pt'}: " + json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
