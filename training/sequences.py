"""Train the number reader: a blob of touching digits read whole with CTC (see
``realtime.sequences``).

Training numbers are composed from MNIST *training* digits exactly as the pair reader's
pairs are (``training.pairs``: each digit scaled to a common height, slanted, its stroke
varied, bottoms on one baseline, pushed together until the strokes overlap by a few
pixels on some row or nearly touch), one to five digits long, defocused now and then.
The reader learns with CTC, so no one tells it where each digit is: it answers, per
column of its field, which digit (or none) is there.

    python -m training.sequences --out runs/sequences   # about 40 min on 2 CPU cores
    cp runs/sequences/model.pt assets/sequences.pt

Settings: see ``--help``. The weights written are the last epoch's (no selection on any
test set); the held-out figures come from numbers composed of the last 5,000 training
images, which the training numbers never use.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from training.checkpoint import CALIBRATION_IMAGES, MNIST_NORMALIZATION
from training.data import load_mnist
from training.fields import NUMBER_BLANK as BLANK
from training.fields import NUMBER_WIDTH, wide_field
from training.model import ModelConfig, SeqNet, build_model, count_parameters
from training.pairs import (HELD_OUT, ReaderSettings, _compose, _glyph, compose_chunks, reader_arguments,
                            reader_settings, run_reader_cli, write_reader)

log = logging.getLogger(__name__)

SEQ_CLASS_NAMES = [str(d) for d in range(10)] + ["blank"]
LENGTH_MIX = {1: 0.1, 2: 0.35, 3: 0.3, 4: 0.15, 5: 0.1}  # digits per composed number
MAX_DIGITS = max(LENGTH_MIX)


@dataclass
class SequenceSettings(ReaderSettings):
    out: str = "runs/sequences"
    samples: int = 250_000
    epochs: int = 4


def make_number(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                ) -> tuple[np.ndarray, list[int]] | None:
    """One composed number: ``(field uint8 [28, WIDTH], its digits)``, or ``None`` when a
    drawn MNIST image had no ink."""
    height = float(np.exp(rng.uniform(np.log(16), np.log(64))))
    slant = rng.uniform(-0.3, 0.15)
    n = int(rng.choice(list(LENGTH_MIX), p=list(LENGTH_MIX.values())))
    idx = rng.integers(len(images), size=n)
    glyphs = []
    for i in idx:
        g = _glyph(images[i], rng, height * rng.uniform(0.9, 1.1), slant + rng.normal(0, 0.05))
        if g is None:
            return None
        glyphs.append(g)
    ink, _ = _compose(glyphs, rng)
    if rng.random() < 0.3:
        ink = cv2.GaussianBlur(ink, (0, 0), rng.uniform(0.4, 1.0) * height / 28)
    return (wide_field(ink, None, NUMBER_WIDTH) * 255 + 0.5).astype(np.uint8), [int(labels[i]) for i in idx]


def _make_chunk(args: tuple[np.ndarray, np.ndarray, int, int]) -> tuple[np.ndarray, np.ndarray]:
    images, labels, n, seed = args
    rng = np.random.default_rng(seed)
    fields, rows = [], []
    while len(fields) < n:
        s = make_number(images, labels, rng)
        if s is not None:
            fields.append(s[0])
            rows.append(s[1] + [-1] * (MAX_DIGITS - len(s[1])))
    return np.stack(fields), np.array(rows, np.int64)


def make_numbers(images: np.ndarray, labels: np.ndarray, n: int, seed: int, workers: int = 1,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` composed numbers: ``(fields uint8 [n, 28, WIDTH], digits [n, MAX_DIGITS])``,
    the digits padded with -1."""
    fields, digits = compose_chunks(_make_chunk, images, labels, n, seed, workers)
    return fields, digits


def sequence_calibration(images: np.ndarray, labels: np.ndarray, n: int = CALIBRATION_IMAGES,
                         seed: int = 0) -> torch.Tensor:
    """``n`` composed training numbers (uint8 [n, 28, WIDTH]) for the int8 quantization of
    the number reader's convolutions, as :func:`training.checkpoint.calibration_images`
    for the digit net."""
    return torch.from_numpy(make_numbers(images, labels, n, seed)[0])


def greedy_readings(logits: torch.Tensor | np.ndarray) -> list[str]:
    """CTC's best-path readings of logits [N, T, 11]: per column the likeliest class,
    repeats merged, blanks dropped."""
    best = np.asarray(logits).argmax(-1)
    out = []
    for row in best:
        keep = (row != BLANK) & np.concatenate([[True], row[1:] != row[:-1]])
        out.append("".join(str(int(d)) for d in row[keep]))
    return out


def _inputs(fields: np.ndarray) -> torch.Tensor:
    mean, std = MNIST_NORMALIZATION["mean"], MNIST_NORMALIZATION["std"]
    return ((torch.from_numpy(fields).float() / 255 - mean) / std)[:, None]


def ctc_loss(model: torch.nn.Module, fields: np.ndarray, digits: np.ndarray) -> torch.Tensor:
    log_probs = model(_inputs(fields)).log_softmax(-1).transpose(0, 1)  # [T, N, 11]
    lengths = torch.from_numpy((digits >= 0).sum(1))
    targets = torch.from_numpy(digits[digits >= 0])
    steps = torch.full((len(fields),), log_probs.shape[0], dtype=torch.long)
    return F.ctc_loss(log_probs, targets, steps, lengths, blank=BLANK, zero_infinity=True)


@torch.inference_mode()
def sequence_metrics(model: torch.nn.Module, data: tuple[np.ndarray, np.ndarray], batch: int = 1024,
                     ) -> dict[str, float]:
    """Held-out figures: whole numbers read right (greedy decoding), overall and by length."""
    fields, digits = data
    model.eval()
    said = []
    for i in range(0, len(fields), batch):
        said += greedy_readings(model(_inputs(fields[i : i + batch])))
    truth = ["".join(str(int(d)) for d in row if d >= 0) for row in digits]
    right = np.array([a == b for a, b in zip(said, truth)])
    lengths = np.array([len(t) for t in truth])
    out = {"numbers_read": float(right.mean())}
    for n in sorted(set(lengths.tolist())):
        out[f"numbers_read_{n}"] = float(right[lengths == n].mean())
    return out


def run(settings: SequenceSettings) -> dict[str, Any]:
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    images, labels = load_mnist("train", settings.data_dir, download=settings.download)
    images, labels = images.numpy(), labels.numpy()
    t0 = time.time()
    print(f"composing {settings.samples} training numbers and 4000 held-out ones ...", flush=True)
    data = make_numbers(images[:-HELD_OUT], labels[:-HELD_OUT], settings.samples, settings.seed + 1, settings.workers)
    held = make_numbers(images[-HELD_OUT:], labels[-HELD_OUT:], 4000, settings.seed + 2, settings.workers)
    print(f"  done in {time.time() - t0:.0f} s", flush=True)
    config = ModelConfig(arch=SeqNet.ARCH, widths=tuple(settings.widths), num_classes=len(SEQ_CLASS_NAMES))
    model = build_model(config)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-4)
    per_epoch = len(data[0]) // settings.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=settings.epochs * per_epoch,
                                                pct_start=0.15)
    out_dir = Path(settings.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    history = []
    for epoch in range(1, settings.epochs + 1):
        model.train()
        perm = np.random.default_rng(settings.seed * 100 + epoch).permutation(len(data[0]))
        total = 0.0
        bar = tqdm(range(per_epoch), desc=f"epoch {epoch}/{settings.epochs}", unit="batch")
        for b in bar:
            idx = perm[b * settings.batch_size : (b + 1) * settings.batch_size]
            loss = ctc_loss(model, data[0][idx], data[1][idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
            bar.set_postfix(loss=f"{total / (b + 1):.3f}")
        m = sequence_metrics(model, held)
        m.update(epoch=epoch, train_loss=total / max(per_epoch, 1), elapsed_s=round(time.time() - t0, 1))
        history.append(m)
        print(json.dumps(m), flush=True)
    metrics = {**history[-1], "parameters": count_parameters(model), "held_out_numbers": len(held[0])}
    write_reader(out_dir, model, settings, SEQ_CLASS_NAMES, data[0], history, metrics)
    return metrics


def parse_args(argv: Sequence[str] | None = None) -> SequenceSettings:
    d = SequenceSettings()
    p = argparse.ArgumentParser(prog="python -m training.sequences", description=__doc__.split("\n\n")[0])
    reader_arguments(p, d, "numbers")
    a = p.parse_args(argv)
    if a.samples < 100 or a.epochs < 1 or a.batch_size < 1 or a.samples < a.batch_size:
        p.error("--samples must be >= 100 and >= --batch-size; --epochs and --batch-size >= 1")
    return reader_settings(a, SequenceSettings)


def main(argv: Sequence[str] | None = None) -> int:
    return run_reader_cli(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
