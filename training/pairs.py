"""Train the pair reader: two touching digits read whole (``python -m training pairs``).

Training pairs are composed from MNIST *training* digits the way handwriting makes them
touch: each digit scaled to a common height (a little apart), slanted by the writer's
slant plus its own, stroke width varied, bottoms on one baseline, and pushed together
until their strokes overlap by a few pixels on some row (or nearly touch). Some crops
carry a sliver of a third digit at either side, cut by a vertical line through the
overlap, as the live view's cut lattice leaves them. Negatives teach the "is this a
pair" output: single digits, three or four digits, a pair with one digit cut in half,
and marks that are no digits at all (random scribbles, generated handwriting-like and
printed letters and words, whole or a stretch between two cuts; see
``training.synth``), passed through MNIST's resolution as the digits are. The marks alone are
negatives of the "these are digits" output, which the live view uses to keep from
splitting words and letters that its cut lattice would read as 1s.

    python -m training pairs --out runs/pairs            # about 40 min on 2 CPU cores
    python -m training pairs --device cuda --workers 8   # minutes, with an NVIDIA GPU
    python -m training pairs --out runs/pairs --resume   # after an interrupt
    python -m training pairs --export assets/pairs.pt    # also ship it (with its ONNX graphs)

A reader can also be fine-tuned (``--init``) with the stretches the live view asks it
about in rendered scenes mixed in (``--scene-pairs``, mined by ``python -m
benchmarks.scene_crops --pairs``); it read fewer touching digits on the tuning scenes
than the shipped reader (assets/MODEL_CARD.md).

Settings: see ``--help``; the run folder: :mod:`training.runs`. The weights written are
the last epoch's (no selection on any test set); the held-out figures come from pairs of
the last 5,000 training images, which the training pairs never use.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.checkpoint import (CALIBRATION_IMAGES, MNIST_NORMALIZATION, CheckpointError, model_from_checkpoint,
                                 read_checkpoint)
from training.data import DataError, read_npz
from training.fields import PAIR_OUTPUTS, PAIR_WIDTH
from training.model import ModelConfig, PairNet
from training.readers import (ReaderRecipe, ReaderSettings, held_out_split, reader_arguments,
                              reader_problems, reader_settings, reader_summary, train_reader)
from training.runs import Curves, parse_or_exit, run_cli
from training.synth import make_pairs


def _class_names() -> list[str]:
    """One name per output, where :data:`training.fields.PAIR_OUTPUTS` puts it."""
    o = PAIR_OUTPUTS
    names: list[Any] = [""] * o.size
    names[o.left] = [f"left {d}" for d in range(10)]
    names[o.right] = [f"right {d}" for d in range(10)]
    names[o.pair] = "pair"
    names[o.ends] = ["left digit ends", "right digit starts"]
    names[o.digits] = "digits"
    return names


PAIR_CLASS_NAMES = _class_names()


@dataclass
class PairSettings(ReaderSettings):
    out: str = "runs/pairs"
    # .npz of the pair reader's inputs as the live view makes them on rendered scenes of
    # MNIST training digits (python -m benchmarks.scene_crops --pairs), mixed in
    scene_pairs: str | None = None
    # a reader's checkpoint to start from (fine-tuning) instead of random weights
    init: str | None = None


def pair_calibration(images: np.ndarray, labels: np.ndarray, n: int = CALIBRATION_IMAGES,
                     seed: int = 0) -> torch.Tensor:
    """``n`` composed training crops (uint8 [n, 28, PAIR_WIDTH]) for the int8 quantization of
    the pair reader, as :func:`training.checkpoint.calibration_images` for the digit net."""
    return torch.from_numpy(make_pairs(images, labels, n, seed)[0])


def pair_loss(out: torch.Tensor, left: torch.Tensor, right: torch.Tensor, is_pair: torch.Tensor,
              ends: torch.Tensor, is_digits: torch.Tensor) -> torch.Tensor:
    """Both "is" outputs on every crop; the digits and the split ends on pairs only."""
    o = PAIR_OUTPUTS
    pos = is_pair > 0.5
    loss = F.binary_cross_entropy_with_logits(out[:, o.pair], is_pair)
    loss = loss + F.binary_cross_entropy_with_logits(out[:, o.digits], is_digits)
    if pos.any():
        loss = loss + F.cross_entropy(out[pos, o.left], left[pos], label_smoothing=0.05)
        loss = loss + F.cross_entropy(out[pos, o.right], right[pos], label_smoothing=0.05)
        loss = loss + 10.0 * F.smooth_l1_loss(torch.sigmoid(out[pos, o.ends]), ends[pos], beta=0.05)
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
    o = PAIR_OUTPUTS
    pos = is_pair > 0.5
    said_pair = out[:, o.pair] > 0
    both = (out[pos, o.left].argmax(1) == left[pos]) & (out[pos, o.right].argmax(1) == right[pos])
    err = np.abs(1 / (1 + np.exp(-out[pos, o.ends])) - ends[pos]).mean()
    digits, said_digits = is_digits > 0.5, out[:, o.digits] > 0
    return {"pair_read": float(both.mean()), "pair_found": float(said_pair[pos].mean()),
            "non_pair_rejected": float((~said_pair[~pos]).mean()), "split_error": float(err),
            "digits_kept": float(said_digits[digits].mean()), "marks_rejected": float((~said_digits[~digits]).mean())}


SCENE_PAIR_KEYS = ("fields", "left", "right", "is_pair", "ends", "is_digits")


def load_scene_pairs(path: str | Path) -> tuple[np.ndarray, ...]:
    """Mined pair-reader inputs (``python -m benchmarks.scene_crops --pairs``), in the
    order :func:`make_pairs` returns its crops."""
    z = read_npz(path, "scene-pairs", SCENE_PAIR_KEYS)
    arrays = tuple(z[k] for k in SCENE_PAIR_KEYS)
    if arrays[0].ndim != 3 or arrays[0].shape[1:] != (28, PAIR_WIDTH) or any(len(a) != len(arrays[0]) for a in arrays):
        raise DataError(f"{path}: expected fields [N, 28, {PAIR_WIDTH}] and one label row per field")
    if len(arrays[1]) and (min(arrays[1].min(), arrays[2].min()) < -1 or max(arrays[1].max(), arrays[2].max()) > 9):
        raise DataError(f"{path}: digit labels outside -1..9")
    return (arrays[0].astype(np.uint8), arrays[1].astype(np.int64), arrays[2].astype(np.int64),
            arrays[3].astype(np.float32), arrays[4].astype(np.float32), arrays[5].astype(np.float32))


def load_start(path: str | Path, config: ModelConfig) -> dict[str, torch.Tensor]:
    """The weights of a pair reader's checkpoint to fine-tune, checked against ``config``."""
    try:
        model = model_from_checkpoint(read_checkpoint(path, PairNet.KIND), path)
    except CheckpointError as err:
        raise DataError("\n".join(f"--init: {line}" for line in str(err).splitlines())) from err
    if model.config != config:
        raise DataError(f"--init {path}: a {model.config.to_dict()} network, not {config.to_dict()}")
    return model.state_dict()


def _compose(settings: PairSettings, images: np.ndarray, labels: np.ndarray, log_line: Callable[[str], None],
             ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    # read before the minutes of composing, so a wrong path fails at once
    mined = load_scene_pairs(settings.scene_pairs) if settings.scene_pairs else None
    (train_x, train_y), (held_x, held_y) = held_out_split(settings, images, labels)
    log_line(f"composing {settings.samples} training crops and {settings.held_out} held-out ones ...")
    data = make_pairs(train_x, train_y, settings.samples, settings.seed, settings.workers)
    held = make_pairs(held_x, held_y, settings.held_out, settings.seed + 1, settings.workers)
    if mined is not None:
        # the calibration images stay composed ones: the first CALIBRATION_IMAGES
        data = tuple(np.concatenate([a, b]) for a, b in zip(data, mined))
        log_line(f"  + {len(mined[0])} scene crops ({int(mined[3].sum())} pairs) from {settings.scene_pairs}")
    return data, held


def _loss(model: nn.Module, data: tuple[torch.Tensor, ...], b: torch.Tensor) -> torch.Tensor:
    x = data[0][b].float()
    # a pixel or two of shift either way, so the heads do not rely on exact centring
    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,)))
    x = torch.roll(x, shifts=(dy, dx), dims=(1, 2))
    x = (x / 255 - MNIST_NORMALIZATION["mean"]) / MNIST_NORMALIZATION["std"]
    return pair_loss(model(x[:, None]), *(t[b] for t in data[1:]))


def _batches(settings: PairSettings, epoch: int, n: int) -> list[torch.Tensor]:
    """Shuffled by torch's generator (seeded at the start, saved with every epoch), the
    last batch ragged."""
    perm = torch.randperm(n).to(torch.device(settings.device))
    return [perm[i : i + settings.batch_size] for i in range(0, n, settings.batch_size)]


def _start(settings: PairSettings, config: ModelConfig) -> dict[str, torch.Tensor] | None:
    return load_start(settings.init, config) if settings.init else None


RECIPE = ReaderRecipe(
    kind=PairNet.KIND, arch=PairNet.ARCH, class_names=tuple(PAIR_CLASS_NAMES), command="python -m training pairs",
    curves=Curves(loss=("train_loss",), score=("pair_read", "non_pair_rejected", "digits_kept", "marks_rejected")),
    compose=_compose, loss=_loss, batches=_batches, steps_per_epoch=lambda n, bs: math.ceil(n / bs),
    metrics=pair_metrics, start=_start,
)


def train_pairs(settings: PairSettings, log_line: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the pair reader per ``settings``; returns the final checkpoint dict."""
    return train_reader(settings, RECIPE, log_line)


def parser(prog: str = "python -m training pairs") -> argparse.ArgumentParser:
    """The pair reader trainer's options."""
    d = PairSettings()
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    reader_arguments(p, d, "crops")
    p.add_argument("--scene-pairs", default=None, metavar="NPZ",
                   help="also train on the pair reader's inputs mined from rendered scenes of MNIST training digits "
                        "(made by python -m benchmarks.scene_crops --pairs; default: composed crops only)")
    p.add_argument("--init", default=None, metavar="CKPT",
                   help="start from this pair reader's weights (fine-tuning; same --widths) instead of random ones")
    return p


def parse_args(argv: Sequence[str] | None = None, prog: str = "python -m training pairs") -> PairSettings:
    a = parse_or_exit(parser(prog), argv, reader_problems)
    return reader_settings(a, PairSettings, scene_pairs=a.scene_pairs, init=a.init)


def main(argv: Sequence[str] | None = None, prog: str = "python -m training pairs") -> int:
    settings = parse_args(argv, prog)
    return run_cli(lambda: train_pairs(settings, lambda s: print(s, flush=True)), settings.out, RECIPE.command,
                   lambda final: reader_summary(final, RECIPE, settings.out))


if __name__ == "__main__":
    sys.exit(main(prog="python -m training.pairs"))
