"""Add int8 calibration images to an existing checkpoint (``python -m training.calibrate``).

Checkpoints written by ``python -m training digits|pairs|numbers`` already carry them;
this is for older ones. A pair reader's checkpoint gets composed pairs of training digits
(``training.pairs.pair_calibration``) instead of single digits, and the number reader's
composed numbers (``training.sequences.sequence_calibration``).
The live recognizer quantizes the network to int8 at load time when a checkpoint has
them, using these training images to fix each layer's activation range. The weights are
left untouched and the file is rewritten atomically.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from training.checkpoint import (
    CALIBRATION_IMAGES,
    CheckpointError,
    calibration_images,
    is_number_reader,
    is_pair_reader,
    read_checkpoint,
    save_checkpoint,
)
from training.data import DataError, load_mnist
from training.readers import HELD_OUT


def parser(prog: str = "python -m training calibrate") -> argparse.ArgumentParser:
    """The calibrate command's options."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Store a fixed sample of MNIST training images in a checkpoint, "
                    "so the live recognizer can run the network in int8.",
    )
    p.add_argument("checkpoint", help="checkpoint file to update in place")
    p.add_argument("--data-dir", default=None, help="folder with the MNIST .gz files (default: $MNIST_DIR)")
    p.add_argument("--download", action="store_true", help="download MNIST into --data-dir when missing")
    p.add_argument("--images", type=int, default=CALIBRATION_IMAGES,
                   help="how many training images to store (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="which random sample (default: %(default)s)")
    return p


def main(argv: Sequence[str] | None = None, prog: str = "python -m training calibrate") -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    if args.images < 1:
        p.error("--images must be >= 1")
    try:
        ckpt = read_checkpoint(args.checkpoint)
        images, labels = load_mnist("train", args.data_dir, download=args.download)
    except (CheckpointError, DataError) as err:
        for line in str(err).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    if is_pair_reader(ckpt):
        from training.pairs import pair_calibration

        # composed pairs, as the pair reader was trained on (never its held-out digits)
        ckpt["calibration"] = pair_calibration(images[:-HELD_OUT].numpy(), labels[:-HELD_OUT].numpy(),
                                               args.images, args.seed)
    elif is_number_reader(ckpt):
        from training.sequences import sequence_calibration

        ckpt["calibration"] = sequence_calibration(images[:-HELD_OUT].numpy(), labels[:-HELD_OUT].numpy(),
                                                   args.images, args.seed)
    else:
        ckpt["calibration"] = calibration_images(images, args.images, args.seed)
    save_checkpoint(ckpt, args.checkpoint)
    print(f"{args.checkpoint}: {len(ckpt['calibration'])} calibration images stored")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(prog="python -m training.calibrate"))
