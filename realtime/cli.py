"""The ``digits`` command: one installed entry point for every tool of the project.

    digits live --source assets/demo.mp4          # = python -m realtime
    digits train pairs --epochs 3                 # = python -m training pairs
    digits eval | export | serve | batch ...      # --help on each for its options

Each subcommand is the ``main(argv) -> int`` of its module, imported only when it is
asked for, so ``digits --help`` and a live-only install never load torch or the web
stack. A command whose extra is not installed says which one to add, in one line.
``digits-live`` and ``digits-train`` are the same as ``digits live`` and ``digits train``.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["COMMANDS", "DISTRIBUTION", "Command", "live", "main", "run", "train"]

DISTRIBUTION = "realtime-digits"


@dataclass(frozen=True)
class Command:
    module: str  # where its main(argv) -> int lives
    summary: str  # its line in digits --help
    extra: str | None = None  # the pip extra it needs beyond the live install
    forward: str | None = None  # a subcommand of `module`'s main this one stands for


COMMANDS: dict[str, Command] = {
    "live": Command("realtime.__main__", "read digits from a camera, a video, images, a folder or a glob "
                    "(window, recording, JSON lines, CSV, annotated images)"),
    "train": Command("training.__main__", "train the networks on MNIST (digits, pairs, numbers), calibrate, "
                     "evaluate, export", extra="train"),
    "eval": Command("training.evaluate", "a digit checkpoint's MNIST test accuracy, confusion matrix and mistakes",
                    extra="train"),
    "export": Command("training.__main__", "write checkpoints' ready-to-run ONNX graphs beside them",
                      extra="train", forward="export"),
    "serve": Command("realtime.web.__main__", "the web app: draw, use the webcam or upload files in a browser",
                     extra="web"),
    "batch": Command("realtime.batch", "read folders, globs and videos in bulk into JSON lines "
                     "(resumable; many workers, or a Ray cluster)"),
}

# the top-level modules of the extras' packages, and the extra that brings each
EXTRA_OF_MODULE = {
    "torch": "train", "torchvision": "train", "matplotlib": "train", "PIL": "train",
    "fastapi": "web", "starlette": "web", "uvicorn": "web", "multipart": "web", "python_multipart": "web",
    "websockets": "web", "av": "video", "ray": "ray",
}
# the live install's own modules (a missing one is a broken install)
BASE_MODULES = {"cv2": "opencv-python", "numpy": "numpy", "onnxruntime": "onnxruntime", "onnx": "onnx",
                "tqdm": "tqdm"}
# one module per extra whose presence says the extra is installed (looked up, not imported)
EXTRA_PROBES = {"train": "torch", "web": "fastapi", "video": "av", "ray": "ray"}


class CommandUnavailable(Exception):
    """A command that cannot run in this install; ``str`` is the one line that says why."""


def install_hint(extra: str) -> str:
    return f"pip install '{DISTRIBUTION}[{extra}]' (in a checkout: pip install '.[{extra}]')"


def missing_module_message(name: str, err: ModuleNotFoundError) -> str | None:
    """What to tell the user when ``digits name`` hit a missing module, or ``None`` when
    the module is not one an install may lack (a bug, to be raised as it is)."""
    missing = err.name or ""
    top = missing.split(".")[0]
    module = COMMANDS[name].module
    if missing and (module == missing or module.startswith(missing + ".")):
        return f"digits {name} is not part of this version (there is no module {module})"
    if top in EXTRA_OF_MODULE:
        extra = EXTRA_OF_MODULE[top]
        return f"digits {name} needs {top}, which this install lacks; add the {extra} extra: {install_hint(extra)}"
    if top in BASE_MODULES:
        return (f"digits {name} needs {top} ({BASE_MODULES[top]}), which this install lacks; "
                f"reinstall: pip install {DISTRIBUTION}")
    return None


def resolve(name: str) -> Callable[[list[str]], int]:
    """The function ``digits name ARGS`` calls with ARGS."""
    cmd = COMMANDS[name]
    module = importlib.import_module(cmd.module)
    entry = module.main
    if cmd.forward is not None:
        if cmd.forward in getattr(module, "COMMANDS", {}):
            return lambda args: entry([cmd.forward, *args])
        fallback = importlib.import_module(f"training.{cmd.forward}")
        if not hasattr(fallback, "main"):
            raise CommandUnavailable(f"digits {name} is not part of this version "
                                     f"(python -m training has no {cmd.forward} command)")
        entry = fallback.main
    if "prog" in inspect.signature(entry).parameters:
        return lambda args: entry(args, prog=f"digits {name}")
    return lambda args: entry(args)


def exit_code(err: SystemExit) -> int:
    """argparse's exits (--help, a usage error) as the code a ``main`` returns."""
    if err.code is None or isinstance(err.code, int):
        return err.code or 0
    print(err.code, file=sys.stderr)
    return 1


def run(name: str, argv: Sequence[str] | None = None) -> int:
    """Run ``digits name`` with ``argv`` (default: the process's arguments)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return resolve(name)(args)
    except CommandUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:
        message = missing_module_message(name, err)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    except SystemExit as err:
        return exit_code(err)


def extra_installed(extra: str) -> bool:
    return importlib.util.find_spec(EXTRA_PROBES[extra]) is not None


def overview() -> str:
    """The text of ``digits --help``."""
    width = max(map(len, COMMANDS))
    lines = ["usage: digits COMMAND [options]   (digits COMMAND --help for its options)", "",
             "Read handwritten digits live from a camera, a video or images, and train the networks that read them.",
             "", "commands:"]
    for name, cmd in COMMANDS.items():
        absent = cmd.extra is not None and not extra_installed(cmd.extra)
        note = f" [needs the {cmd.extra} extra]" if absent else ""
        lines.append(f"  {name:<{width}}  {cmd.summary}{note}")
    lines += ["", "options:", "  -h, --help  this list", "  --version   the installed version", "",
              "extras: train (train, eval, export), web (serve), video (H.264 recordings), ray (batch --ray); "
              f"e.g. {install_hint('train,web')}"]
    return "\n".join(lines)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed; running from a checkout)"


def say(text: str, stream: Any) -> None:
    """Print ``text``; a reader that left early (``digits --help | head``) is no error."""
    try:
        print(text, file=stream)
        stream.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())  # nor at exit's flush


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        say(overview(), sys.stdout if args else sys.stderr)
        return 0 if args else 2
    if args[0] == "--version":
        print(f"digits {version()}")
        return 0
    if args[0] not in COMMANDS:
        close = difflib.get_close_matches(args[0], COMMANDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        print(f"digits: error: unknown command {args[0]!r} (choose from {', '.join(COMMANDS)}){hint}",
              file=sys.stderr)
        return 2
    return run(args[0], args[1:])


def live(argv: Sequence[str] | None = None) -> int:
    """``digits-live``: the same as ``digits live``."""
    return run("live", argv)


def train(argv: Sequence[str] | None = None) -> int:
    """``digits-train``: the same as ``digits train``."""
    return run("train", argv)


if __name__ == "__main__":
    raise SystemExit(main())
