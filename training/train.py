"""The digit network's recipe: MNIST with camera-like augmentation, SGD, an EMA of the
weights (``python -m training digits``).

The run folder (:mod:`training.runs`) holds ``settings.json``, ``metrics.csv``,
``curves.png``, ``last.pt`` (resumable, rewritten atomically after every epoch, so Ctrl-C
never loses more than the epoch in progress), ``model.pt`` (final weights, no optimizer
state) with its ONNX graphs ``model.onnx`` and ``model.int8.onnx``, and the plots
``confusion_matrix.png`` and ``mistakes.png``.

The weights shipped are an exponential moving average (EMA) of the trained weights,
taken at the last epoch: the test set is only reported, never used to pick an epoch.

Across processes (:mod:`training.distributed`)::

    torchrun --standalone --nproc-per-node 2 -m training digits --threads 1 ...

Each rank trains its shard of every batch (every N-th image) under
DistributedDataParallel (gloo on the CPU, nccl with ``--device cuda``, a GPU per rank);
gradients and batch-norm statistics are averaged over the ranks, so N ranks train
exactly what one process with ``--accumulate N`` trains for the same seed, and a run
resumes on another number of processes (``--resume``). Rank 0 alone evaluates, prints
and writes the run folder.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from training.augment import AugmentConfig, augment
from training.checkpoint import (CLASS_NAMES, MNIST_NORMALIZATION, TRAINING_STATE_KEYS, calibration_images,
                                 make_checkpoint, read_checkpoint)
from training.data import load_mnist, load_scene_crops
from training import distributed
from training.distributed import Ranks, all_sum
from training.evaluate import EvalResult, evaluate_model, plot_confusion, plot_mistakes
from training.model import DigitNet, ModelConfig, build_model, count_macs, count_parameters
from training.negatives import NOT_A_DIGIT, make_negatives
from training.runs import (Curves, RunError, RunFolder, common_arguments, common_problems, epoch_bar, parse_or_exit,
                           restore, resumed_settings, run_cli, settings_dict)

NEGATIVE_CLASS = 10
NEGATIVE_BANK = 30000  # generated once per run; augmentation varies them further

log = logging.getLogger(__name__)

METRIC_FIELDS = [
    "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
    "images_per_s", "epoch_s", "elapsed_s",
]


@dataclass
class TrainSettings:
    """Everything a digit training run depends on (stored in its settings.json and checkpoints)."""

    data_dir: str | None = None
    download: bool = False
    out: str = "runs/latest"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-4
    label_smoothing: float = 0.05
    ema_decay: float = 0.999
    augment: float = 1.0
    widths: tuple[int, int, int] = (16, 32, 64)
    # share of each batch replaced by non-digits (an 11th class): the scene crops' mined
    # negatives when they have them, else generated ones; 0 = digits only
    negatives: float = 0.0
    # .npz of pipeline crops of rendered MNIST training digits (benchmarks/scene_crops.py)
    scene_crops: str | None = None
    seed: int = 0
    threads: int = 2
    train_subset: int | None = None
    test_subset: int | None = None
    resume: bool = False
    export: str | None = None
    progress: bool = True
    device: str = "cpu"
    # each batch in this many shards per process, one forward/backward each (gradients and
    # batch-norm statistics averaged): N ranks train what one process with accumulate N does
    accumulate: int = 1

    def to_dict(self) -> dict[str, Any]:
        return settings_dict(self)


# what a resumed run takes from the new command, not from its settings: where it runs
LOCAL_SETTINGS = ("threads", "progress", "export", "data_dir", "download", "device", "accumulate")
CURVES = Curves(loss=("train_loss", "test_loss"), score=("train_acc", "test_acc"), score_label="accuracy %")


class EMA:
    """Exponential moving average of parameters and BN buffers (warm-started)."""

    def __init__(self, model: DigitNet, decay: float) -> None:
        self.decay = decay
        self.steps = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: DigitNet) -> None:
        self.steps += 1
        # early on the average would be dominated by the random init
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for k, v in model.state_dict().items():
            s = self.shadow[k]
            if v.dtype.is_floating_point:
                s.mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                s.copy_(v)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "shadow": self.shadow}

    def load_state_dict(self, st: dict[str, Any]) -> None:
        self.steps = int(st["steps"])
        self.shadow = {k: v.to(self.shadow[k].device).clone() for k, v in st["shadow"].items()}


def train_one_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ema: EMA,
    settings: TrainSettings,
    generator: torch.Generator,
    progress: Callable[[int, float, float], None] | None = None,
    negatives: torch.Tensor | None = None,
    *,
    aug_generator: torch.Generator | None = None,
    ranks: Ranks = Ranks(),
) -> dict[str, float]:
    """One pass over ``images`` (uint8 [N, 28, 28], on the CPU) in shuffled batches;
    returns metrics. With ``negatives`` (uint8 [M, 28, 28]), ``settings.negatives`` of
    every batch is replaced by them, labelled as class 10 ("not a digit"). The batches
    are augmented where the model is, drawing from ``aug_generator`` (a generator on
    that device; ``generator`` on the CPU).

    Each batch is cut into ``ranks.world * settings.accumulate`` shards (every k-th
    image), each a forward and backward pass of its own (batch norm sees the shard),
    their gradients averaged; this rank computes its ``accumulate`` of them (``model``
    is then DistributedDataParallel, which averages over the ranks). Every rank draws
    the whole batch's random numbers, so the shards together are the batch a single
    process would train on, whatever the number of ranks."""
    aug_cfg = AugmentConfig(strength=settings.augment)
    net = model.module if isinstance(model, DistributedDataParallel) else model
    device = next(net.parameters()).device
    aug_generator = generator if aug_generator is None else aug_generator
    model.train()
    n_neg = int(round(settings.negatives * settings.batch_size)) if negatives is not None else 0
    perm = torch.randperm(len(images), generator=generator)
    totals = [0.0, 0.0, 0.0]  # images, right answers, loss sum (this rank's)
    t0 = time.perf_counter()
    bs = settings.batch_size
    for start in range(0, len(perm) - bs + 1, bs):  # drop the ragged last batch (BN)
        idx = perm[start : start + bs]
        xb, y = images[idx], labels[idx]
        if n_neg:
            pick = torch.randint(0, len(negatives), (n_neg,), generator=generator)
            xb = torch.cat([xb[n_neg:], negatives[pick]])
            y = torch.cat([y[n_neg:], torch.full((n_neg,), NEGATIVE_CLASS, dtype=y.dtype)])
        _step(model, xb, y, optimizer, settings, aug_cfg, aug_generator, ranks, device, totals)
        scheduler.step()
        ema.update(net)
        if progress is not None:
            progress(len(idx), totals[2] / totals[0], totals[1] / totals[0])
    dt = time.perf_counter() - t0
    seen, correct, loss_sum = all_sum(totals, ranks, device)
    return {
        "train_loss": loss_sum / max(seen, 1),
        "train_acc": correct / max(seen, 1),
        "images_per_s": seen / max(dt, 1e-9),
        "epoch_s": dt,
    }


def _step(model: nn.Module, xb: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer,
          settings: TrainSettings, aug_cfg: AugmentConfig, aug_generator: torch.Generator, ranks: Ranks,
          device: torch.device, totals: list[float]) -> None:
    """One optimizer step on this rank's shards of the batch ``xb``, ``y`` (uint8, CPU);
    adds the shards' image count, right answers and loss sum to ``totals``."""
    mean, std = MNIST_NORMALIZATION["mean"], MNIST_NORMALIZATION["std"]
    n, k = len(xb), ranks.world * settings.accumulate
    mine = range(ranks.rank * settings.accumulate, (ranks.rank + 1) * settings.accumulate)
    if k == 1:
        x = augment(xb.to(device).float().div_(255.0).unsqueeze_(1), aug_cfg, aug_generator)
        shards = [(x, y.to(device))]
    else:
        pos = torch.cat([torch.arange(j, n, k) for j in mine])
        x = augment(xb[pos].to(device).float().div_(255.0).unsqueeze_(1), aug_cfg, aug_generator, batch=n, part=pos)
        shards = list(zip(x.split(n // k), y[pos].to(device).split(n // k)))
    optimizer.zero_grad(set_to_none=True)
    stats = _ShardStats(model, len(shards), ranks)
    for i, (xs, ys) in enumerate(shards):
        stats.begin(i)
        # the ranks' gradients are averaged once, after this rank's last shard
        sync = i == len(shards) - 1 or not isinstance(model, DistributedDataParallel)
        with contextlib.nullcontext() if sync else model.no_sync():
            logits = model((xs - mean) / std)
            loss = F.cross_entropy(logits, ys, label_smoothing=settings.label_smoothing)
            (loss if len(shards) == 1 else loss / len(shards)).backward()
        stats.end()
        totals[0] += len(ys)
        totals[1] += int((logits.argmax(1) == ys).sum())
        totals[2] += loss.item() * len(ys)
    stats.average()
    optimizer.step()


class _ShardStats:
    """Batch norm's running statistics over a batch trained in shards: each shard
    updates them from the same starting point and the step keeps their mean over all
    shards (of every rank), so N ranks and one process with --accumulate N keep the same
    statistics. A batch in one shard on one rank is left to batch norm alone."""

    def __init__(self, model: nn.Module, shards: int, ranks: Ranks) -> None:
        net = model.module if isinstance(model, DistributedDataParallel) else model
        named = dict(net.named_buffers())
        self.running = [b for n, b in named.items() if n.endswith(("running_mean", "running_var"))]
        self.counters = [b for n, b in named.items() if n.endswith("num_batches_tracked")]
        self.shards, self.ranks = shards, ranks
        self.active = shards > 1 or ranks.distributed
        if shards > 1:
            self.start = [b.clone() for b in self.running + self.counters]
            self.total = [torch.zeros_like(b) for b in self.running]

    @torch.no_grad()
    def begin(self, i: int) -> None:
        if self.shards > 1 and i > 0:
            for b, v in zip(self.running + self.counters, self.start):
                b.copy_(v)

    @torch.no_grad()
    def end(self) -> None:
        if self.shards > 1:
            for t, b in zip(self.total, self.running):
                t += b

    @torch.no_grad()
    def average(self) -> None:
        if not self.active:
            return
        if self.shards > 1:
            for b, t in zip(self.running, self.total):
                b.copy_(t / self.shards)
        if self.ranks.distributed:
            flat = torch.cat([b.reshape(-1) for b in self.running])
            torch.distributed.all_reduce(flat)
            flat /= self.ranks.world
            for b, v in zip(self.running, flat.split([b.numel() for b in self.running])):
                b.copy_(v.view_as(b))


def _subset(images: torch.Tensor, labels: torch.Tensor, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    if n is None or n >= len(images):
        return images, labels
    return images[:n], labels[:n]


def make_optimizer(
    model: nn.Module, settings: TrainSettings, steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The recipe's optimizer and schedule: SGD with Nesterov momentum, one cycle per run."""
    optimizer = torch.optim.SGD(
        model.parameters(), lr=settings.lr, momentum=0.9, nesterov=True, weight_decay=settings.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.lr, epochs=settings.epochs, steps_per_epoch=max(steps_per_epoch, 1),
        pct_start=0.15, div_factor=20.0, final_div_factor=200.0,
    )
    return optimizer, scheduler


@dataclass
class _Data:
    """A run's images: the training set (MNIST, then any scene crops), the test set and
    the "not a digit" bank (None: digits only)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    n_mnist: int
    negatives: torch.Tensor | None


def _load_data(settings: TrainSettings) -> _Data:
    train_x, train_y = _subset(*load_mnist("train", settings.data_dir, settings.download), settings.train_subset)
    test_x, test_y = _subset(*load_mnist("test", settings.data_dir, settings.download), settings.test_subset)
    n_mnist = len(train_x)
    mined = None
    if settings.scene_crops:
        extra_x, extra_y, mined = load_scene_crops(settings.scene_crops)
        train_x, train_y = torch.cat([train_x, extra_x]), torch.cat([train_y, extra_y])
    if len(train_x) < settings.batch_size:
        raise RunError(f"--batch-size {settings.batch_size} is larger than the {len(train_x)} training images: "
                       f"no step would be taken")
    return _Data(train_x, train_y, test_x, test_y, n_mnist, mined)


def _negative_bank(settings: TrainSettings, data: _Data) -> torch.Tensor | None:
    """The pipeline's own wrong readings when the scene crops carry them, else generated."""
    if settings.negatives <= 0:
        return None
    if data.negatives is not None:
        return data.negatives
    return make_negatives(NEGATIVE_BANK, data.train_x[: data.n_mnist], seed=settings.seed)


@dataclass
class _Training:
    """What a run trains and the state it resumes from (mutated by every step)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    ema: EMA
    generator: torch.Generator  # the batches' order and negatives (and augmentation, on the CPU)
    aug_generator: torch.Generator | None  # augmentation on a GPU: a generator there
    accumulate: int  # shards of each batch per rank

    def state_dict(self, epoch: int, rows: list[dict[str, Any]], ranks: Ranks = Ranks()) -> dict[str, Any]:
        st = {"epoch": epoch, "rows": rows, "model": self.model.state_dict(),
              "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
              "ema": self.ema.state_dict(), "generator": self.generator.get_state(),
              "torch_rng": torch.get_rng_state(), "shards": ranks.world * self.accumulate}
        if self.aug_generator is not None:
            st["aug_generator"] = self.aug_generator.get_state()
        return st

    def load_state_dict(self, st: dict[str, Any]) -> None:
        self.model.load_state_dict(st["model"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        self.ema.load_state_dict(st["ema"])
        self.generator.set_state(st["generator"])
        torch.set_rng_state(st["torch_rng"])
        if self.aug_generator is not None and "aug_generator" in st:
            self.aug_generator.set_state(st["aug_generator"])


def _build(settings: TrainSettings, steps_per_epoch: int, n_classes: int, device: torch.device) -> _Training:
    """The network (on ``device``), optimizer, schedule and EMA of a fresh run (seeded)."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    aug_generator = None if device.type == "cpu" else torch.Generator(device).manual_seed(settings.seed)
    model = build_model(ModelConfig(widths=tuple(settings.widths), num_classes=n_classes)).to(device)
    optimizer, scheduler = make_optimizer(model, settings, steps_per_epoch)
    return _Training(model, optimizer, scheduler, EMA(model, settings.ema_decay), generator, aug_generator,
                     settings.accumulate)


def run_training(settings: TrainSettings, log_line: Callable[[str], None] = print,
                 ranks: Ranks = Ranks()) -> dict[str, Any]:
    """Train per ``settings``; returns the final checkpoint dict. Raises DataError,
    CheckpointError, RunError; KeyboardInterrupt propagates after the last epoch's
    checkpoint. ``ranks``: this process among those ``torchrun`` started (the CLI reads
    them from its environment): each trains its shards of every batch, rank 0 alone
    evaluates, logs and writes the run folder."""
    torch.set_num_threads(distributed.threads_per_rank(settings.threads, ranks, settings.device))
    device = distributed.start(ranks, settings.device)
    try:
        return _run(settings, log_line if ranks.writer else (lambda s: None), ranks, device)
    finally:
        distributed.stop(ranks)


def _run(settings: TrainSettings, log_line: Callable[[str], None], ranks: Ranks,
         device: torch.device) -> dict[str, Any]:
    run = RunFolder(settings.out, CURVES, writer=ranks.writer)
    run.prepare(settings.export)
    settings, resume_state = _resume(run, settings, log_line, ranks)
    start_epoch, rows = (int(resume_state["epoch"]), list(resume_state["rows"])) if resume_state else (0, [])
    data = _load_data(settings)
    run.write_settings(settings.to_dict())
    class_names = CLASS_NAMES + ([NOT_A_DIGIT] if settings.negatives > 0 else [])
    steps_per_epoch = len(data.train_x) // settings.batch_size
    tr = _build(settings, steps_per_epoch, len(class_names), device)
    negatives = _negative_bank(settings, data)
    if resume_state is not None:
        restore(tr, resume_state, run.last)
    # each rank keeps its own batch-norm statistics between the steps' averages (_ShardStats)
    model = tr.model if not ranks.distributed else DistributedDataParallel(
        tr.model, device_ids=[device.index] if device.type == "cuda" else None, forward_sync_buffers=False)
    params, macs = count_parameters(tr.model), count_macs(tr.model)
    log_line(
        f"model digitnet widths={tuple(settings.widths)}: {params:,} parameters, {macs / 1e6:.2f} M MACs/image; "
        f"{data.n_mnist:,} MNIST + {len(data.train_x) - data.n_mnist:,} scene-crop train / {len(data.test_x):,} "
        f"test images, {torch.get_num_threads()} threads, {device}" + (f", {ranks.world} ranks" if ranks.distributed else "")
    )
    eval_model = build_model(tr.model.config)
    elapsed0 = float(rows[-1]["elapsed_s"]) if rows else 0.0
    t_run = time.perf_counter()
    res = None
    for epoch in range(start_epoch + 1, settings.epochs + 1):
        m = _epoch(tr, model, data, negatives, settings, epoch, steps_per_epoch, ranks)
        if not ranks.writer:
            continue
        eval_model.load_state_dict(tr.ema.shadow)
        res = _evaluate(eval_model, data)
        row = {"epoch": epoch, **{k: round(v, 6) for k, v in m.items()},
               "test_loss": round(res.loss, 6), "test_acc": round(res.accuracy, 6),
               "lr": round(tr.scheduler.get_last_lr()[0], 6),
               "elapsed_s": round(elapsed0 + time.perf_counter() - t_run, 2)}
        rows.append({k: row[k] for k in METRIC_FIELDS})
        run.save_epoch(make_checkpoint(eval_model, metrics=_final_metrics(res, rows, params, macs),
                                       settings=settings.to_dict(), training_state=tr.state_dict(epoch, rows, ranks),
                                       class_names=class_names), rows)
        # only now report the epoch: an interrupt right after this line keeps its checkpoint
        log_line(
            f"epoch {epoch:>3}/{settings.epochs}  loss {m['train_loss']:.4f}  train {100 * m['train_acc']:.2f}%  "
            f"test {100 * res.accuracy:.2f}% (loss {res.loss:.4f})  {m['images_per_s']:,.0f} img/s  "
            f"{m['epoch_s']:.0f}s"
        )
    if not ranks.writer:  # rank 0 writes the final checkpoint; every rank returns it
        torch.distributed.barrier()
        return read_checkpoint(run.model)
    final = _finish(run, settings, eval_model, tr, data, res, rows, params, macs, class_names)
    if ranks.distributed:
        torch.distributed.barrier()
    return final


def _finish(run: RunFolder, settings: TrainSettings, eval_model: nn.Module, tr: _Training, data: _Data,
            res: EvalResult | None, rows: list[dict[str, Any]], params: int, macs: int,
            class_names: list[str]) -> dict[str, Any]:
    """model.pt (the EMA weights, with calibration images), its graphs and the plots."""
    if res is None:  # resumed a finished run: re-evaluate for the artifacts
        eval_model.load_state_dict(tr.ema.shadow)
        res = _evaluate(eval_model, data)
    final = make_checkpoint(eval_model, metrics=_final_metrics(res, rows, params, macs), settings=settings.to_dict(),
                            class_names=class_names, calibration=calibration_images(data.train_x, seed=settings.seed))
    run.finish(final, settings.export)
    plot_confusion(res.confusion, run.out / "confusion_matrix.png")
    plot_mistakes(data.test_x, data.test_y, res.predictions, run.out / "mistakes.png")
    return final


def _resume(run: RunFolder, settings: TrainSettings, log_line: Callable[[str], None], ranks: Ranks,
            ) -> tuple[TrainSettings, dict[str, Any] | None]:
    """The settings the run goes on with (checked) and the training state to resume
    from (``None``: a fresh run)."""
    state = None
    if settings.resume:
        saved, state = run.read_resume(DigitNet.KIND, TRAINING_STATE_KEYS + ("ema", "generator"))
        settings = resumed_settings(TrainSettings, saved, settings, LOCAL_SETTINGS, str(run.last))
        log_line(f"resuming {run.last} after epoch {state['epoch']}/{settings.epochs}")
        before, now = state.get("shards", 1), ranks.world * settings.accumulate
        if before != now:
            log_line(f"note: the run trained its batches in {before} shards, now in {now} (ranks x --accumulate): "
                     f"batch norm sees other groups of images from here on")
    problems = _problems(settings)
    shards = ranks.world * settings.accumulate
    if settings.batch_size % shards:
        problems.append(f"--batch-size {settings.batch_size} is not a multiple of {shards} shards "
                        f"({ranks.world} ranks x --accumulate {settings.accumulate})")
    if problems:
        raise RunError("\n".join(problems))
    return settings, state


def _epoch(tr: _Training, model: nn.Module, data: _Data, negatives: torch.Tensor | None, settings: TrainSettings,
           epoch: int, steps_per_epoch: int, ranks: Ranks) -> dict[str, float]:
    """One epoch under a progress bar (rank 0's)."""
    bar = epoch_bar(settings.progress and ranks.writer, steps_per_epoch * settings.batch_size,
                    f"epoch {epoch}/{settings.epochs}")

    def progress(n: int, loss: float, acc: float) -> None:
        bar.update(n)
        bar.set_postfix(loss=f"{loss:.3f}", acc=f"{100 * acc:.2f}%", refresh=False)

    try:
        return train_one_epoch(model, data.train_x, data.train_y, tr.optimizer, tr.scheduler, tr.ema, settings,
                               tr.generator, progress if settings.progress and ranks.writer else None, negatives,
                               aug_generator=tr.aug_generator, ranks=ranks)
    finally:
        bar.close()


def _evaluate(model: nn.Module, data: _Data) -> EvalResult:
    return evaluate_model(model, data.test_x, data.test_y, MNIST_NORMALIZATION["mean"], MNIST_NORMALIZATION["std"])


def _final_metrics(res: Any, rows: list[dict[str, Any]], params: int, macs: int) -> dict[str, Any]:
    d = res.as_dict()
    return {
        "test_accuracy": d["accuracy"],
        "test_loss": d["loss"],
        "test_errors": d["errors"],
        "test_images": d["n"],
        "per_class_accuracy": d["per_class_accuracy"],
        "epochs": int(rows[-1]["epoch"]) if rows else 0,
        "train_seconds": float(rows[-1]["elapsed_s"]) if rows else 0.0,
        "parameters": params,
        "macs_per_image": macs,
        "confusion_matrix": res.confusion[:10, :10].tolist(),
    }


# ---------------------------------------------------------------------------- command line


def parser(prog: str = "python -m training digits") -> argparse.ArgumentParser:
    """The digit trainer's options."""
    d = TrainSettings()
    p = argparse.ArgumentParser(
        prog=prog,
        description="Train the digit CNN on MNIST (train split only) with camera-like augmentation. "
        "Writes settings.json, metrics.csv, curves.png, last.pt (resumable), model.pt and plots to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    common_arguments(p, d, lr_help="peak learning rate of the one-cycle schedule (SGD, Nesterov)",
                     batch_help="images per SGD step")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="L2 weight decay")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing, help="cross-entropy label smoothing")
    p.add_argument("--ema-decay", type=float, default=d.ema_decay, help="decay of the weight moving average that is shipped")
    p.add_argument("--augment", type=float, default=d.augment, help="augmentation strength (0 disables it)")
    p.add_argument("--negatives", type=float, default=d.negatives,
                   help="share of each batch replaced by non-digits taught as an 11th class 'not a digit': "
                        "the pipeline's wrong readings from --scene-crops when it has them, else generated "
                        "digit pairs, scribbles and dashes; 0 trains digits only")
    p.add_argument("--scene-crops", default=d.scene_crops, metavar="NPZ",
                   help="also train on these pipeline crops of rendered MNIST training digits "
                        "(made by python -m benchmarks.scene_crops); default: MNIST only")
    p.add_argument("--train-subset", type=int, default=None, help="use only the first N training images (quick runs)")
    p.add_argument("--test-subset", type=int, default=None, help="evaluate on only the first N test images (quick runs)")
    p.add_argument("--accumulate", type=int, default=d.accumulate, metavar="K",
                   help="split each batch into K shards (every K-th image), one forward and backward pass each, "
                        "gradients averaged: the memory of a K times smaller batch, batch norm seeing each shard "
                        "alone. Under torchrun --nproc-per-node N each rank takes its N-th of every batch the same "
                        "way, so N ranks train the weights of one process with --accumulate N (same seed)")
    return p


def parse_args(argv: Sequence[str] | None = None, prog: str = "python -m training digits") -> TrainSettings:
    a = parse_or_exit(parser(prog), argv, _problems)
    return TrainSettings(
        data_dir=a.data_dir, download=a.download, out=a.out, epochs=a.epochs, batch_size=a.batch_size,
        lr=a.lr, weight_decay=a.weight_decay, label_smoothing=a.label_smoothing, ema_decay=a.ema_decay,
        augment=a.augment, widths=tuple(a.widths), negatives=a.negatives, scene_crops=a.scene_crops, seed=a.seed,
        threads=a.threads, train_subset=a.train_subset, test_subset=a.test_subset, resume=a.resume,
        export=a.export, progress=not a.no_progress, device=a.device, accumulate=a.accumulate,
    )


def _problems(a: argparse.Namespace | TrainSettings) -> list[str]:
    """What makes the options (or settings: the same names) no training run."""
    problems = common_problems(a)
    if a.batch_size < 2:
        problems.append("--batch-size must be >= 2 (batch norm needs two images)")
    if a.accumulate < 1 or a.batch_size % max(a.accumulate, 1):
        problems.append(f"--accumulate must be >= 1 and divide --batch-size {a.batch_size}, not {a.accumulate}")
    for name, lo, hi in (("weight_decay", 0, math.inf), ("label_smoothing", 0, 1), ("ema_decay", 0, 1),
                         ("augment", 0, math.inf), ("negatives", 0, 1)):
        v = getattr(a, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and lo <= v and (v < hi or hi is math.inf)):
            problems.append(f"--{name.replace('_', '-')} must be a number in [{lo}, {hi}), not {v}")
    for name in ("train_subset", "test_subset"):
        if getattr(a, name) is not None and getattr(a, name) < 1:
            problems.append(f"--{name.replace('_', '-')} must be >= 1, not {getattr(a, name)}")
    if a.train_subset is not None and a.scene_crops is None and a.batch_size > a.train_subset:
        problems.append(f"--batch-size {a.batch_size} is larger than --train-subset {a.train_subset}: "
                        f"no step would be taken")
    return problems


def main(argv: Sequence[str] | None = None, prog: str = "python -m training digits") -> int:
    settings = parse_args(argv, prog)
    try:
        ranks = distributed.ranks_from_env()  # torchrun's, or a world of one
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    command = ("python -m training digits" if not ranks.distributed else
               f"torchrun --nproc-per-node {ranks.world} -m training digits")
    return run_cli(lambda: run_training(settings, log_line=lambda s: print(s, flush=True), ranks=ranks),
                   settings.out, command, _summary(settings), quiet=not ranks.writer)


def _summary(settings: TrainSettings) -> Callable[[dict[str, Any]], str]:
    def line(final: dict[str, Any]) -> str:
        m = final["metrics"]
        return (f"done: test accuracy {100 * m['test_accuracy']:.2f}%, loss {m['test_loss']:.4f}, "
                f"{m['train_seconds'] / 60:.1f} min; run folder {settings.out}")

    return line


__all__ = ["TrainSettings", "train_one_epoch", "run_training", "make_optimizer", "EMA", "parse_args", "main"]
