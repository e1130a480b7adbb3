"""Metrics and plots for any checkpoint: accuracy, loss, per-class accuracy, confusion
matrix, a grid of mistakes, training curves.

CLI: ``python -m training evaluate --weights assets/digits.pt [--data-dir D] [--out DIR]``
(``python -m training.evaluate`` is the same).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    accuracy: float
    loss: float
    per_class: list[float]
    confusion: np.ndarray  # [true, pred] counts
    predictions: torch.Tensor
    labels: torch.Tensor

    def as_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "per_class_accuracy": [round(a, 6) for a in self.per_class],
            "errors": int((self.predictions != self.labels).sum()),
            "n": int(self.labels.numel()),
        }


def normalize_batch(images_u8: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 [N, 28, 28] (white ink on black) -> normalized float [N, 1, 28, 28]."""
    return (images_u8.float().div(255.0).unsqueeze(1) - mean) / std


@torch.inference_mode()
def evaluate_model(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: float,
    std: float,
    batch_size: int = 1000,
) -> EvalResult:
    was_training = model.training
    model.eval()
    preds, loss_sum = [], 0.0
    for i in range(0, len(images), batch_size):
        logits = model(normalize_batch(images[i : i + batch_size], mean, std))
        loss_sum += float(F.cross_entropy(logits, labels[i : i + batch_size], reduction="sum"))
        preds.append(logits.argmax(1))
    model.train(was_training)
    pred = torch.cat(preds)
    n_cls = int(max(int(labels.max()), int(pred.max())) + 1)
    n_cls = max(n_cls, 10)
    cm = np.zeros((n_cls, n_cls), dtype=np.int64)
    np.add.at(cm, (labels.numpy(), pred.numpy()), 1)
    per_class = [float(cm[c, c] / max(cm[c].sum(), 1)) for c in range(10)]
    return EvalResult(
        accuracy=float((pred == labels).float().mean()),
        loss=loss_sum / len(images),
        per_class=per_class,
        confusion=cm,
        predictions=pred,
        labels=labels,
    )


# ---- plots (matplotlib, headless) -------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(metrics_csv: str | Path, out: str | Path) -> Path:
    """Loss and accuracy per epoch from a digit run's ``metrics.csv``."""
    from training.runs import plot_curves as plot_run_curves
    from training.train import CURVES

    return plot_run_curves(metrics_csv, out, CURVES)


def plot_confusion(cm: np.ndarray, out: str | Path, title: str = "MNIST test confusion matrix") -> Path:
    plt = _plt()
    cm = cm[:10, :10]
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    off = cm.copy()
    np.fill_diagonal(off, 0)
    ax.imshow(off, cmap="Reds")
    for i in range(10):
        for j in range(10):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="black" if i != j else "tab:blue")
    ax.set_xticks(range(10)), ax.set_yticks(range(10))
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    ax.set_title(f"{title}\n(off-diagonal shaded; diagonal in blue)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def plot_mistakes(
    images: torch.Tensor, labels: torch.Tensor, preds: torch.Tensor, out: str | Path, limit: int = 100
) -> Path:
    """A grid of misclassified images titled ``true->pred``, drawn as one picture (a
    hundred small axes took seconds to lay out)."""
    plt = _plt()
    idx = torch.nonzero(preds != labels).flatten()[:limit].tolist()
    cols, cell, gap = 10, images.shape[-1], 12  # gap: room above each image for its title
    rows = max(1, (len(idx) + cols - 1) // cols)
    sheet = np.full((rows * (cell + gap), cols * (cell + 4)), 255, np.uint8)
    fig, ax = plt.subplots(figsize=(cols * 1.1, rows * 1.3 + 0.4))
    for k, i in enumerate(idx):
        r, c = divmod(k, cols)
        y, x = r * (cell + gap) + gap, c * (cell + 4) + 2
        sheet[y : y + cell, x : x + cell] = 255 - images[i].numpy()
        ax.text(x + cell / 2, y - 2, f"{int(labels[i])}->{int(preds[i])}", ha="center", va="bottom", fontsize=8,
                color="crimson")
    ax.imshow(sheet, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    ax.set_title(f"test mistakes (true->predicted), {len(idx)} shown", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)


def format_report(res: EvalResult) -> str:
    lines = [
        f"test accuracy {100 * res.accuracy:.2f}% ({int((res.predictions != res.labels).sum())} errors "
        f"of {res.labels.numel()}), loss {res.loss:.4f}",
        "per-class accuracy: " + "  ".join(f"{d}:{100 * a:.2f}%" for d, a in enumerate(res.per_class)),
    ]
    return "\n".join(lines)


def parser(prog: str = "python -m training evaluate") -> argparse.ArgumentParser:
    """The evaluate command's options."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Evaluate a checkpoint on the full MNIST test set (10,000 images).",
    )
    p.add_argument("--weights", default="assets/digits.pt",
                   help="a digit network's checkpoint (a reader's is refused; default: %(default)s)")
    p.add_argument("--data-dir", default=None, help="folder with the MNIST .gz files (default: $MNIST_DIR)")
    p.add_argument("--download", action="store_true", help="download MNIST into --data-dir when missing")
    p.add_argument("--out", default=None, help="folder for confusion matrix and mistakes plots (optional)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for PyTorch (default: %(default)s)")
    return p


def main(argv: Sequence[str] | None = None, prog: str = "python -m training evaluate") -> int:
    from training.checkpoint import CheckpointError, load_checkpoint
    from training.data import DataError, load_mnist

    from training.runs import RunError, check_writable_dir

    p = parser(prog)
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error(f"--threads must be >= 1, not {args.threads}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    try:
        if args.out:  # before the work, not after it
            check_writable_dir(Path(args.out), "--out")
        model, ckpt = load_checkpoint(args.weights, kind="digits")
        images, labels = load_mnist("test", args.data_dir, download=args.download)
    except (CheckpointError, DataError, RunError) as err:
        for line in str(err).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    norm = ckpt["normalization"]
    res = evaluate_model(model, images, labels, norm["mean"], norm["std"])
    print(f"checkpoint {args.weights}")
    print(format_report(res))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        plot_confusion(res.confusion, out / "confusion_matrix.png")
        plot_mistakes(images, labels, res.predictions, out / "mistakes.png")
        print(f"plots written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(prog="python -m training.evaluate"))
