"""What the pair reader's and the number reader's training share: their settings and
options, and the loop (AdamW, one-cycle schedule, held-out figures after every epoch)
over samples composed from MNIST training digits.

Each reader brings its :class:`ReaderRecipe` (what it composes, its loss, its
held-out figures: :mod:`training.pairs`, :mod:`training.sequences`); the run folder,
resume and the command-line wrapper are :mod:`training.runs`'.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from training.checkpoint import CALIBRATION_IMAGES, TRAINING_STATE_KEYS, make_checkpoint
from training.data import load_mnist
from training.model import ModelConfig, build_model, count_parameters
from training.runs import (Curves, RunError, RunFolder, common_arguments, common_problems, epoch_bar, restore,
                           resumed_settings, settings_dict)

HELD_OUT = 5000  # the last training images: held-out samples only, never composed into training ones


@dataclass
class ReaderSettings:
    """What training the pair reader and the number reader share (stored in the run's
    settings.json and checkpoints)."""

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
    held_out: int = 10_000  # composed held-out samples the figures are measured on
    device: str = "cpu"
    resume: bool = False
    export: str | None = None
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return settings_dict(self)


# what a resumed run takes from the new command, not from its settings: where it runs
LOCAL_SETTINGS = ("data_dir", "download", "threads", "workers", "device", "export", "progress")

# (fields uint8 [N, 28, W], then the labels' arrays), as composed
Samples = tuple[np.ndarray, ...]


@dataclass(frozen=True)
class ReaderRecipe:
    """What one reader's training is made of; the loop around it is :func:`train_reader`."""

    kind: str  # the checkpoint's kind (training.model: PairNet.KIND, SeqNet.KIND)
    arch: str  # the network (training.model.NETWORKS)
    class_names: tuple[str, ...]  # one per output
    command: str  # how the run is resumed, for the interrupt message
    curves: Curves  # metrics.csv columns drawn in curves.png
    # (settings, images, labels of all MNIST training digits, log_line) -> (training samples, held-out samples)
    compose: Callable[[Any, np.ndarray, np.ndarray, Callable[[str], None]], tuple[Samples, Samples]]
    # (model, training samples on the device, batch indices) -> the batch's loss
    loss: Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], torch.Tensor]
    # (settings, epoch, number of samples) -> the epoch's batches, as index tensors
    batches: Callable[[Any, int, int], list[torch.Tensor]]
    # (number of samples, batch size) -> how many batches an epoch has
    steps_per_epoch: Callable[[int, int], int]
    # (model, held-out samples) -> held-out figures (fractions and errors)
    metrics: Callable[[nn.Module, Samples], dict[str, float]]
    # (settings, model config) -> weights to start from, or None (random)
    start: Callable[[Any, ModelConfig], dict[str, torch.Tensor] | None] = lambda settings, config: None


def reader_arguments(p: argparse.ArgumentParser, d: ReaderSettings, made: str) -> None:
    """The command-line options of :class:`ReaderSettings`; ``made``: what training
    composes ("crops", "numbers")."""
    common_arguments(p, d, lr_help="peak AdamW learning rate of the one-cycle schedule",
                     batch_help=f"{made} per step")
    p.add_argument("--samples", type=int, default=d.samples, help=f"training {made} composed")
    p.add_argument("--held-out", type=int, default=d.held_out,
                   help=f"held-out {made} composed (of the last {HELD_OUT:,} training images) for the figures")
    p.add_argument("--workers", type=int, default=d.workers, help=f"processes composing {made}")


def reader_problems(a: argparse.Namespace | ReaderSettings) -> list[str]:
    """What makes the options (or settings: the same names) no training run."""
    problems = common_problems(a)
    if a.samples < 100:
        problems.append(f"--samples must be >= 100, not {a.samples}")
    if a.held_out < 1:
        problems.append(f"--held-out must be >= 1, not {a.held_out}")
    if a.workers < 1:
        problems.append(f"--workers must be >= 1, not {a.workers}")
    return problems


def reader_settings(a: argparse.Namespace, cls: type, **extra: Any) -> Any:
    """``cls`` (a :class:`ReaderSettings`) from parsed :func:`reader_arguments` and ``extra``."""
    return cls(data_dir=a.data_dir, download=a.download, out=a.out, samples=a.samples, epochs=a.epochs,
               batch_size=a.batch_size, lr=a.lr, widths=tuple(a.widths), seed=a.seed, threads=a.threads,
               workers=a.workers, held_out=a.held_out, device=a.device, resume=a.resume, export=a.export,
               progress=not a.no_progress, **extra)


def reader_summary(final: dict[str, Any], recipe: "ReaderRecipe", out: str) -> str:
    """The closing line of a reader's training: its headline held-out figures."""
    m = final["metrics"]
    shown = ", ".join(f"{k.replace('_', ' ')} {100 * m[k]:.2f}%" for k in recipe.curves.score if k in m)
    return f"done: {shown} (held out); wrote {Path(out) / 'model.pt'}"


@dataclass
class _Training:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler

    def state_dict(self, epoch: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"epoch": epoch, "rows": rows, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, st: dict[str, Any]) -> None:
        self.model.load_state_dict(st["model"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        torch.set_rng_state(st["torch_rng"])


def train_reader(settings: ReaderSettings, recipe: ReaderRecipe, log_line: Callable[[str], None] = print,
                 ) -> dict[str, Any]:
    """Train a reader per ``settings`` and ``recipe``; returns the final checkpoint dict.
    Raises DataError, CheckpointError, RunError; KeyboardInterrupt propagates after the
    last epoch's checkpoint."""
    run = RunFolder(settings.out, recipe.curves)
    run.prepare(settings.export)
    start_epoch, rows, resume_state = 0, [], None
    if settings.resume:
        saved, resume_state = run.read_resume(recipe.kind, TRAINING_STATE_KEYS)
        settings = resumed_settings(type(settings), saved, settings, LOCAL_SETTINGS, str(run.last))
        start_epoch, rows = int(resume_state["epoch"]), list(resume_state["rows"])
        log_line(f"resuming {run.last} after epoch {start_epoch}/{settings.epochs}")
    problems = reader_problems(settings)
    if problems:
        raise RunError("\n".join(problems))
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    images, labels = load_mnist("train", settings.data_dir, download=settings.download)
    config = ModelConfig(arch=recipe.arch, widths=tuple(settings.widths), num_classes=len(recipe.class_names))
    start = recipe.start(settings, config)  # before the minutes of composing, so a wrong path fails at once
    t0 = time.time()
    data, held = recipe.compose(settings, images.numpy(), labels.numpy(), log_line)
    log_line(f"  composed {len(data[0]):,} training and {len(held[0]):,} held-out samples in {time.time() - t0:.0f} s")
    run.write_settings(settings.to_dict())
    device = torch.device(settings.device)
    model = build_model(config)
    if start is not None:
        model.load_state_dict(start)
    tr = _optimizer(model.to(device), settings, recipe.steps_per_epoch(len(data[0]), settings.batch_size))
    if resume_state is not None:
        restore(tr, resume_state, run.last)
    on_device = tuple(torch.from_numpy(a).to(device) for a in data)
    t_run, elapsed0 = time.perf_counter(), float(rows[-1]["elapsed_s"]) if rows else 0.0
    for epoch in range(start_epoch + 1, settings.epochs + 1):
        row = _epoch(tr, recipe, settings, on_device, epoch)
        row.update(recipe.metrics(tr.model, held))
        row.update(lr=round(tr.scheduler.get_last_lr()[0], 8),
                   elapsed_s=round(elapsed0 + time.perf_counter() - t_run, 2))
        rows.append(row)
        ckpt = make_checkpoint(tr.model, metrics=_metrics(rows, tr.model, recipe, held), settings=settings.to_dict(),
                               class_names=list(recipe.class_names), training_state=tr.state_dict(epoch, rows))
        run.save_epoch(ckpt, rows)
        log_line(_epoch_line(row, recipe.curves.score, settings.epochs))
    model = tr.model.cpu()
    final = make_checkpoint(model, metrics=_metrics(rows, model, recipe, held), settings=settings.to_dict(),
                            class_names=list(recipe.class_names),
                            calibration=torch.from_numpy(data[0][:CALIBRATION_IMAGES]))
    run.finish(final, settings.export)
    return final


def _optimizer(model: nn.Module, settings: ReaderSettings, steps_per_epoch: int) -> _Training:
    """The readers' recipe: AdamW, one cycle over the whole run."""
    if steps_per_epoch < 1:
        raise RunError(f"--batch-size {settings.batch_size} is larger than the {settings.samples} samples: "
                       f"no step would be taken")
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=settings.epochs * steps_per_epoch,
                                                pct_start=0.15)
    return _Training(model, opt, sched)


def _epoch(tr: _Training, recipe: ReaderRecipe, settings: ReaderSettings, data: tuple[torch.Tensor, ...],
           epoch: int) -> dict[str, Any]:
    """One pass over the training samples; the epoch's row of training figures."""
    tr.model.train()
    batches = recipe.batches(settings, epoch, len(data[0]))
    bar = epoch_bar(settings.progress, sum(len(b) for b in batches), f"epoch {epoch}/{settings.epochs}")
    total, seen, t0 = 0.0, 0, time.perf_counter()
    try:
        for b in batches:
            loss = recipe.loss(tr.model, data, b)
            tr.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            tr.optimizer.step()
            tr.scheduler.step()
            total += float(loss.detach()) * len(b)
            seen += len(b)
            bar.update(len(b))
            bar.set_postfix(loss=f"{total / seen:.3f}", refresh=False)
    finally:
        bar.close()
    dt = time.perf_counter() - t0
    return {"epoch": epoch, "train_loss": round(total / max(seen, 1), 6),
            "images_per_s": round(seen / max(dt, 1e-9), 1), "epoch_s": round(dt, 2)}


def _metrics(rows: list[dict[str, Any]], model: nn.Module, recipe: ReaderRecipe, held: Samples) -> dict[str, Any]:
    return {**rows[-1], "parameters": count_parameters(model), f"held_out_{recipe.kind}": len(held[0])}


def _epoch_line(row: dict[str, Any], shown: Sequence[str], epochs: int) -> str:
    figures = "  ".join(f"{k.replace('_', ' ')} {100 * row[k]:.2f}%" for k in shown if k in row)
    return (f"epoch {row['epoch']:>3}/{epochs}  loss {row['train_loss']:.4f}  {figures}  "
            f"{row['images_per_s']:,.0f} samples/s  {row['epoch_s']:.0f}s")


def held_out_split(settings: ReaderSettings, images: np.ndarray, labels: np.ndarray,
                   ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((train images, labels), (held-out images, labels))``: the last HELD_OUT training
    images are the held-out samples' only source."""
    return (images[:-HELD_OUT], labels[:-HELD_OUT]), (images[-HELD_OUT:], labels[-HELD_OUT:])


__all__ = ["HELD_OUT", "ReaderSettings", "ReaderRecipe", "reader_arguments", "reader_problems", "reader_settings",
           "reader_summary", "train_reader", "held_out_split"]
