"""Train the number reader: a blob of touching digits read whole with CTC
(``python -m training numbers``).

Training numbers are composed from MNIST *training* digits exactly as the pair reader's
pairs are (:mod:`training.synth`: each digit scaled to a common height, slanted, its
stroke varied, bottoms on one baseline, pushed together until the strokes overlap by a
few pixels on some row or nearly touch), one to five digits long, defocused now and
then. The reader learns with CTC, so no one tells it where each digit is: it answers,
per column of its field, which digit (or none) is there.

    python -m training numbers --out runs/sequences   # about 40 min on 2 CPU cores
    python -m training numbers --out runs/sequences --resume   # after an interrupt
    python -m training numbers --export assets/sequences.pt    # also ship it (with its ONNX graphs)

Settings: see ``--help``; the run folder: :mod:`training.runs`. The weights written are
the last epoch's (no selection on any test set); the held-out figures come from numbers
composed of the last 5,000 training images, which the training numbers never use.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.checkpoint import CALIBRATION_IMAGES, MNIST_NORMALIZATION
from training.fields import NUMBER_BLANK as BLANK
from training.model import SeqNet
from training.readers import (ReaderRecipe, ReaderSettings, held_out_split, reader_arguments, reader_problems,
                              reader_settings, reader_summary, train_reader)
from training.runs import Curves, parse_or_exit, run_cli
from training.synth import MAX_DIGITS, make_numbers

SEQ_CLASS_NAMES = [str(d) for d in range(BLANK)] + ["blank"]  # the ten digits, then CTC's blank


@dataclass
class SequenceSettings(ReaderSettings):
    out: str = "runs/sequences"
    samples: int = 250_000
    epochs: int = 4
    held_out: int = 4000


def sequence_calibration(images: np.ndarray, labels: np.ndarray, n: int = CALIBRATION_IMAGES,
                         seed: int = 0) -> torch.Tensor:
    """``n`` composed training numbers (uint8 [n, 28, NUMBER_WIDTH]) for the int8
    quantization of the number reader's convolutions, as
    :func:`training.checkpoint.calibration_images` for the digit net."""
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


def _inputs(fields: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 fields [N, 28, W] -> the network's normalized input [N, 1, 28, W]."""
    mean, std = MNIST_NORMALIZATION["mean"], MNIST_NORMALIZATION["std"]
    x = torch.from_numpy(fields) if isinstance(fields, np.ndarray) else fields
    return ((x.float() / 255 - mean) / std)[:, None]


def ctc_loss(model: torch.nn.Module, fields: np.ndarray | torch.Tensor, digits: np.ndarray | torch.Tensor,
             ) -> torch.Tensor:
    """CTC loss of composed numbers (``digits`` padded with -1)."""
    digits = torch.from_numpy(digits) if isinstance(digits, np.ndarray) else digits
    log_probs = model(_inputs(fields)).log_softmax(-1).transpose(0, 1)  # [T, N, 11]
    lengths = (digits >= 0).sum(1)
    targets = digits[digits >= 0]
    steps = torch.full((len(fields),), log_probs.shape[0], dtype=torch.long)
    return F.ctc_loss(log_probs, targets, steps, lengths, blank=BLANK, zero_infinity=True)


@torch.inference_mode()
def sequence_metrics(model: torch.nn.Module, data: tuple[np.ndarray, np.ndarray], batch: int = 1024,
                     ) -> dict[str, float]:
    """Held-out figures: whole numbers read right (greedy decoding), overall and by length."""
    fields, digits = data
    model.eval()
    device = next(model.parameters()).device
    said = []
    for i in range(0, len(fields), batch):
        said += greedy_readings(model(_inputs(fields[i : i + batch]).to(device)).cpu())
    truth = ["".join(str(int(d)) for d in row if d >= 0) for row in digits]
    right = np.array([a == b for a, b in zip(said, truth)])
    lengths = np.array([len(t) for t in truth])
    out = {"numbers_read": float(right.mean())}
    for n in sorted(set(lengths.tolist())):
        out[f"numbers_read_{n}"] = float(right[lengths == n].mean())
    return out


def _compose(settings: SequenceSettings, images: np.ndarray, labels: np.ndarray, log_line: Callable[[str], None],
             ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    (train_x, train_y), (held_x, held_y) = held_out_split(settings, images, labels)
    log_line(f"composing {settings.samples} training numbers and {settings.held_out} held-out ones ...")
    data = make_numbers(train_x, train_y, settings.samples, settings.seed + 1, settings.workers)
    held = make_numbers(held_x, held_y, settings.held_out, settings.seed + 2, settings.workers)
    return data, held


def _loss(model: nn.Module, data: tuple[torch.Tensor, ...], b: torch.Tensor) -> torch.Tensor:
    return ctc_loss(model, data[0][b], data[1][b])


def _batches(settings: SequenceSettings, epoch: int, n: int) -> list[torch.Tensor]:
    """Each epoch's own order (seeded by the run's seed and the epoch), the ragged last
    batch dropped."""
    perm = torch.from_numpy(np.random.default_rng(settings.seed * 100 + epoch).permutation(n))
    perm = perm.to(torch.device(settings.device))
    bs = settings.batch_size
    return [perm[b * bs : (b + 1) * bs] for b in range(n // bs)]


RECIPE = ReaderRecipe(
    kind=SeqNet.KIND, arch=SeqNet.ARCH, class_names=tuple(SEQ_CLASS_NAMES), command="python -m training numbers",
    curves=Curves(loss=("train_loss",), score=("numbers_read",)),
    compose=_compose, loss=_loss, batches=_batches, steps_per_epoch=lambda n, bs: n // bs,
    metrics=sequence_metrics,
)


def train_numbers(settings: SequenceSettings, log_line: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the number reader per ``settings``; returns the final checkpoint dict."""
    return train_reader(settings, RECIPE, log_line)


def parser(prog: str = "python -m training numbers") -> argparse.ArgumentParser:
    """The number reader trainer's options."""
    d = SequenceSettings()
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    reader_arguments(p, d, "numbers")
    return p


def parse_args(argv: Sequence[str] | None = None, prog: str = "python -m training numbers") -> SequenceSettings:
    a = parse_or_exit(parser(prog), argv, _problems)
    return reader_settings(a, SequenceSettings)


def _problems(a: argparse.Namespace) -> list[str]:
    problems = reader_problems(a)
    if a.samples < a.batch_size:
        problems.append(f"--batch-size {a.batch_size} is larger than --samples {a.samples}: no step would be taken")
    return problems


def main(argv: Sequence[str] | None = None, prog: str = "python -m training numbers") -> int:
    settings = parse_args(argv, prog)
    return run_cli(lambda: train_numbers(settings, lambda s: print(s, flush=True)), settings.out, RECIPE.command,
                   lambda final: reader_summary(final, RECIPE, settings.out))


__all__ = ["SEQ_CLASS_NAMES", "MAX_DIGITS", "SequenceSettings", "sequence_calibration", "greedy_readings",
           "ctc_loss", "sequence_metrics", "train_numbers", "parse_args", "main"]


if __name__ == "__main__":
    sys.exit(main(prog="python -m training.sequences"))
