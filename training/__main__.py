"""CLI: ``python -m training COMMAND ...``: train the three networks, calibrate, evaluate,
export ready-to-run graphs.

Without a command, ``python -m training --epochs ...`` trains the digit network as it
always did; ``python -m training.pairs``, ``.sequences``, ``.evaluate`` and
``.calibrate`` are the same as the commands below.
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

# command -> (module with main(argv, prog), what it does)
COMMANDS = {
    "digits": ("training.train", "train the digit network on MNIST (the default without a command)"),
    "pairs": ("training.pairs", "train the pair reader on touching pairs composed from MNIST digits"),
    "numbers": ("training.sequences", "train the number reader (CTC) on numbers composed from MNIST digits"),
    "calibrate": ("training.calibrate", "add int8 calibration inputs to an existing checkpoint"),
    "evaluate": ("training.evaluate", "a digit checkpoint's MNIST test accuracy, confusion matrix and mistakes"),
    "export": ("training.export", "write checkpoints' ready-to-run ONNX graphs (float32, int8) beside them"),
}


def overview() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m training COMMAND [options]   (python -m training COMMAND --help for its options)",
             "", "commands:"]
    lines += [f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items()]
    lines += ["", "Without a command, python -m training [options] trains the digit network; its options:", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        module = importlib.import_module(COMMANDS[args[0]][0])
        return module.main(args[1:], prog=f"python -m training {args[0]}")
    from training import train

    if args and args[0] in ("-h", "--help"):
        print(overview())
        return train.main(["--help"], prog="python -m training [digits]")
    if args and not args[0].startswith("-"):
        print(overview().splitlines()[0], file=sys.stderr)
        print(f"python -m training: error: unknown command {args[0]!r} (choose from {', '.join(COMMANDS)})",
              file=sys.stderr)
        return 2
    return train.main(args, prog="python -m training")


if __name__ == "__main__":
    raise SystemExit(main())
