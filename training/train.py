"""The training loop: settings, one epoch, evaluation, checkpoints and run artifacts.

A run folder holds ``settings.json``, ``metrics.csv``, ``last.pt`` (resumable, rewritten
atomically after every epoch, so Ctrl-C never loses more than the epoch in progress),
``model.pt`` (final weights, no optimizer state) and the plots ``curves.png``,
``confusion_matrix.png`` and ``mistakes.png``.

The weights shipped are an exponential moving average (EMA) of the trained weights,
taken at the last epoch: the test set is only reported, never used to pick an epoch.
"""

from __future__ import annotations

import csv
import json
import logging

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from training.augment import AugmentConfig, augment
from training.checkpoint import (
    CLASS_NAMES,
    MNIST_NORMALIZATION,
    CheckpointError,
    calibration_images,
    make_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from training.data import load_mnist, load_scene_crops
from training.evaluate import evaluate_model, plot_confusion, plot_curves, plot_mistakes
from training.model import DigitNet, ModelConfig, build_model, count_macs, count_parameters
from training.negatives import NOT_A_DIGIT, make_negatives

NEGATIVE_CLASS = 10
NEGATIVE_BANK = 30000  # generated once per run; augmentation varies them further

log = logging.getLogger(__name__)

METRIC_FIELDS = [
    "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
    "images_per_s", "epoch_s", "elapsed_s",
]


@dataclass
class TrainSettings:
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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d


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
        self.shadow = {k: v.clone() for k, v in st["shadow"].items()}


def train_one_epoch(
    model: DigitNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ema: EMA,
    settings: TrainSettings,
    generator: torch.Generator,
    progress: Callable[[int, float, float], None] | None = None,
    negatives: torch.Tensor | None = None,
) -> dict[str, float]:
    """One pass over ``images`` (uint8 [N, 28, 28]) in shuffled batches; returns metrics.
    With ``negatives`` (uint8 [M, 28, 28]), ``settings.negatives`` of every batch is
    replaced by them, labelled as class 10 ("not a digit")."""
    mean, std = MNIST_NORMALIZATION["mean"], MNIST_NORMALIZATION["std"]
    aug_cfg = AugmentConfig(strength=settings.augment)
    model.train()
    n_neg = int(round(settings.negatives * settings.batch_size)) if negatives is not None else 0
    perm = torch.randperm(len(images), generator=generator)
    seen, correct, loss_sum = 0, 0, 0.0
    t0 = time.perf_counter()
    bs = settings.batch_size
    for start in range(0, len(perm) - bs + 1, bs):  # drop the ragged last batch (BN)
        idx = perm[start : start + bs]
        xb, y = images[idx], labels[idx]
        if n_neg:
            pick = torch.randint(0, len(negatives), (n_neg,), generator=generator)
            xb = torch.cat([xb[n_neg:], negatives[pick]])
            y = torch.cat([y[n_neg:], torch.full((n_neg,), NEGATIVE_CLASS, dtype=y.dtype)])
        x = xb.float().div_(255.0).unsqueeze_(1)
        x = augment(x, aug_cfg, generator)
        x = (x - mean) / std
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=settings.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        ema.update(model)
        seen += len(idx)
        loss_sum += loss.item() * len(idx)
        correct += int((logits.argmax(1) == y).sum())
        if progress is not None:
            progress(len(idx), loss_sum / seen, correct / seen)
    dt = time.perf_counter() - t0
    return {
        "train_loss": loss_sum / max(seen, 1),
        "train_acc": correct / max(seen, 1),
        "images_per_s": seen / max(dt, 1e-9),
        "epoch_s": dt,
    }


def _write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=METRIC_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in METRIC_FIELDS})
    os.replace(tmp, path)


def _subset(images: torch.Tensor, labels: torch.Tensor, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    if n is None or n >= len(images):
        return images, labels
    return images[:n], labels[:n]


def make_optimizer(
    model: DigitNet, settings: TrainSettings, steps_per_epoch: int
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


def run_training(settings: TrainSettings, log_line: Callable[[str], None] = print) -> dict[str, Any]:
    """Train per ``settings``; returns the final checkpoint dict. Raises DataError,
    CheckpointError; KeyboardInterrupt propagates after the last epoch's checkpoint."""
    torch.set_num_threads(max(1, settings.threads))
    out = Path(settings.out)
    last_path = out / "last.pt"

    start_epoch, rows, resume_state = 0, [], None
    if settings.resume:
        ckpt = read_checkpoint(last_path)
        resume_state = ckpt.get("training_state")
        if resume_state is None:
            raise CheckpointError(f"{last_path}: holds no training state to resume from")
        saved = dict(ckpt["settings"])
        # the run's own settings win, except what only affects this machine
        for k in ("threads", "progress", "export", "data_dir", "download"):
            saved[k] = getattr(settings, k)
        saved["resume"] = True
        saved["widths"] = tuple(saved["widths"])
        settings = TrainSettings(**saved)
        start_epoch = int(resume_state["epoch"])
        rows = list(resume_state["rows"])
        log_line(f"resuming {last_path} after epoch {start_epoch}/{settings.epochs}")

    train_x, train_y = _subset(*load_mnist("train", settings.data_dir, settings.download), settings.train_subset)
    test_x, test_y = _subset(*load_mnist("test", settings.data_dir, settings.download), settings.test_subset)
    n_mnist = len(train_x)
    mined_negatives = None
    if settings.scene_crops:
        extra_x, extra_y, mined_negatives = load_scene_crops(settings.scene_crops)
        train_x, train_y = torch.cat([train_x, extra_x]), torch.cat([train_y, extra_y])
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps(settings.to_dict(), indent=2) + "\n")

    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    n_classes = 11 if settings.negatives > 0 else 10
    model = build_model(ModelConfig(widths=tuple(settings.widths), num_classes=n_classes))
    negatives = None
    if settings.negatives > 0:
        # the pipeline's own wrong readings when the scene crops carry them, else generated
        negatives = mined_negatives if mined_negatives is not None else make_negatives(
            NEGATIVE_BANK, train_x[:n_mnist], seed=settings.seed)
    class_names = CLASS_NAMES + ([NOT_A_DIGIT] if settings.negatives > 0 else [])
    steps_per_epoch = len(train_x) // settings.batch_size
    optimizer, scheduler = make_optimizer(model, settings, steps_per_epoch)
    ema = EMA(model, settings.ema_decay)
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        ema.load_state_dict(resume_state["ema"])
        gen.set_state(resume_state["generator"])
        torch.set_rng_state(resume_state["torch_rng"])

    params, macs = count_parameters(model), count_macs(model)
    log_line(
        f"model digitnet widths={tuple(settings.widths)}: {params:,} parameters, {macs / 1e6:.2f} M MACs/image; "
        f"{n_mnist:,} MNIST + {len(train_x) - n_mnist:,} scene-crop train / {len(test_x):,} test images, "
        f"{settings.threads} threads"
    )
    eval_model = build_model(model.config)
    elapsed0 = float(rows[-1]["elapsed_s"]) if rows else 0.0
    t_run = time.perf_counter()
    res = None
    for epoch in range(start_epoch + 1, settings.epochs + 1):
        bar = None
        if settings.progress:
            from tqdm import tqdm

            bar = tqdm(total=steps_per_epoch * settings.batch_size, unit="img", unit_scale=True,
                       desc=f"epoch {epoch}/{settings.epochs}", leave=False, dynamic_ncols=True)

        def progress(n: int, loss: float, acc: float) -> None:
            bar.update(n)
            bar.set_postfix(loss=f"{loss:.3f}", acc=f"{100 * acc:.2f}%", refresh=False)

        try:
            m = train_one_epoch(model, train_x, train_y, optimizer, scheduler, ema, settings, gen,
                                progress if bar is not None else None, negatives)
        finally:
            if bar is not None:
                bar.close()
        eval_model.load_state_dict(ema.shadow)
        res = evaluate_model(eval_model, test_x, test_y, MNIST_NORMALIZATION["mean"], MNIST_NORMALIZATION["std"])
        row = {
            "epoch": epoch, **{k: round(v, 6) for k, v in m.items()},
            "test_loss": round(res.loss, 6), "test_acc": round(res.accuracy, 6),
            "lr": round(scheduler.get_last_lr()[0], 6),
            "elapsed_s": round(elapsed0 + time.perf_counter() - t_run, 2),
        }
        rows.append(row)
        training_state = {
            "epoch": epoch, "rows": rows, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "ema": ema.state_dict(), "generator": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        metrics = _final_metrics(res, rows, params, macs)
        save_checkpoint(
            make_checkpoint(eval_model, metrics=metrics, settings=settings.to_dict(), training_state=training_state,
                            class_names=class_names),
            last_path,
        )
        _write_metrics(out / "metrics.csv", rows)
        # only now report the epoch: an interrupt right after this line keeps its checkpoint
        log_line(
            f"epoch {epoch:>3}/{settings.epochs}  loss {m['train_loss']:.4f}  train {100 * m['train_acc']:.2f}%  "
            f"test {100 * res.accuracy:.2f}% (loss {res.loss:.4f})  {m['images_per_s']:,.0f} img/s  "
            f"{m['epoch_s']:.0f}s"
        )

    if res is None:  # resumed a finished run: re-evaluate for the artifacts
        eval_model.load_state_dict(ema.shadow)
        res = evaluate_model(eval_model, test_x, test_y, MNIST_NORMALIZATION["mean"], MNIST_NORMALIZATION["std"])
    final = make_checkpoint(eval_model, metrics=_final_metrics(res, rows, params, macs), settings=settings.to_dict(),
                            class_names=class_names, calibration=calibration_images(train_x, seed=settings.seed))
    save_checkpoint(final, out / "model.pt")
    if settings.export:
        save_checkpoint(final, settings.export)
    plot_curves(out / "metrics.csv", out / "curves.png")
    plot_confusion(res.confusion, out / "confusion_matrix.png")
    plot_mistakes(test_x, test_y, res.predictions, out / "mistakes.png")
    (out / "final_metrics.json").write_text(json.dumps(final["metrics"], indent=2) + "\n")
    return final


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


__all__ = ["TrainSettings", "train_one_epoch", "run_training", "make_optimizer", "EMA"]
