"""CLI: ``python -m training`` trains the digit CNN on MNIST and writes a run folder."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Callable, Sequence

from training.train import TrainSettings


def parse_args(argv: Sequence[str] | None = None) -> TrainSettings:
    d = TrainSettings()
    p = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the digit CNN on MNIST (train split only) with camera-like augmentation. "
        "Writes settings.json, metrics.csv, last.pt (resumable), model.pt and plots to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data-dir", default=d.data_dir,
                   help="folder with the four MNIST IDX .gz files (default: $MNIST_DIR, else ~/.cache/realtime-digits/mnist)")
    p.add_argument("--download", action="store_true", help="download MNIST into the data folder when files are missing")
    p.add_argument("--out", default=d.out, help="run folder for checkpoints, metrics and plots")
    p.add_argument("--epochs", type=int, default=d.epochs, help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="images per SGD step")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate of the one-cycle schedule (SGD, Nesterov)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="L2 weight decay")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing, help="cross-entropy label smoothing")
    p.add_argument("--ema-decay", type=float, default=d.ema_decay, help="decay of the weight moving average that is shipped")
    p.add_argument("--augment", type=float, default=d.augment, help="augmentation strength (0 disables it)")
    p.add_argument("--widths", type=int, nargs=3, default=list(d.widths), metavar=("W28", "W14", "W7"),
                   help="conv channels at 28, 14 and 7 px")
    p.add_argument("--negatives", type=float, default=d.negatives,
                   help="share of each batch replaced by non-digits taught as an 11th class 'not a digit': "
                        "the pipeline's wrong readings from --scene-crops when it has them, else generated "
                        "digit pairs, scribbles and dashes; 0 trains digits only")
    p.add_argument("--scene-crops", default=d.scene_crops, metavar="NPZ",
                   help="also train on these pipeline crops of rendered MNIST training digits "
                        "(made by python -m benchmarks.scene_crops); default: MNIST only")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (runs are deterministic for a seed and thread count)")
    p.add_argument("--threads", type=int, default=d.threads, help="CPU threads for PyTorch")
    p.add_argument("--train-subset", type=int, default=None, help="use only the first N training images (quick runs)")
    p.add_argument("--test-subset", type=int, default=None, help="evaluate on only the first N test images (quick runs)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--export", default=None, help="also write the final checkpoint here (e.g. assets/digits.pt)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (one summary line per epoch only)")
    a = p.parse_args(argv)
    if a.epochs < 1 or a.batch_size < 2 or a.threads < 1:
        p.error("--epochs and --threads must be >= 1, --batch-size >= 2")
    return TrainSettings(
        data_dir=a.data_dir, download=a.download, out=a.out, epochs=a.epochs, batch_size=a.batch_size,
        lr=a.lr, weight_decay=a.weight_decay, label_smoothing=a.label_smoothing, ema_decay=a.ema_decay,
        augment=a.augment, widths=tuple(a.widths), negatives=a.negatives, scene_crops=a.scene_crops, seed=a.seed, threads=a.threads,
        train_subset=a.train_subset, test_subset=a.test_subset, resume=a.resume, export=a.export,
        progress=not a.no_progress,
    )


def main(argv: Sequence[str] | None = None) -> int:
    from training.checkpoint import CheckpointError
    from training.data import DataError
    from training.train import run_training

    settings = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    restore = _interrupt_on_signals()
    try:
        final = run_training(settings, log_line=lambda s: print(s, flush=True))
    except (DataError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: the last complete epoch is in {settings.out}/last.pt; "
              f"continue with: python -m training --out {settings.out} --resume", file=sys.stderr)
        return 130
    m = final["metrics"]
    print(f"done: test accuracy {100 * m['test_accuracy']:.2f}%, loss {m['test_loss']:.4f}, "
          f"{m['train_seconds'] / 60:.1f} min; run folder {settings.out}")
    restore()
    return 0


def _interrupt_on_signals() -> Callable[[], None]:
    """Ctrl-C and SIGTERM both stop training between two Python steps with
    KeyboardInterrupt, so the message below is printed and the last complete epoch's
    checkpoint (written atomically) is what remains. SIGINT is set explicitly because a
    job started in the background by a shell inherits it as ignored."""
    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, h in previous.items():
            signal.signal(sig, h)

    return restore


if __name__ == "__main__":
    raise SystemExit(main())
