"""What every trainer shares: the run folder, its settings, metrics CSV, curves plot,
checkpoints, resume and the command-line wrapper.

A run folder holds::

    settings.json       the run's settings (what --resume continues with)
    metrics.csv         one row per finished epoch
    curves.png          the metrics' curves, redrawn after every epoch
    last.pt             resumable checkpoint (with training state), after every epoch
    model.pt            the final weights (no optimizer state), with calibration inputs
    model.onnx, model.int8.onnx   its ready-to-run graphs (training.export)
    final_metrics.json  model.pt's metrics

Checkpoints are written atomically (a temp file, then a rename), so an interrupt never
loses more than the epoch in progress; a temp file left by a kill is removed on the next
start. The digit trainer (:mod:`training.train`) and the pair and number reader
trainers (:mod:`training.pairs`, :mod:`training.sequences`) use it the same way.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math
import os
import signal
import sys
import tempfile
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from training.atomic import write_atomic
from training.errors import CheckpointError

log = logging.getLogger(__name__)


class RunError(Exception):
    """A run that cannot start: an output path that cannot be written, settings that
    make no training, or a run folder that cannot be resumed."""


@dataclass(frozen=True)
class Curves:
    """Which metrics.csv columns a trainer's curves plot shows."""

    loss: tuple[str, ...]  # drawn on a log scale, left
    score: tuple[str, ...]  # fractions in [0, 1], drawn as percentages, right
    score_label: str = "%"


# ---------------------------------------------------------------------------- settings


def settings_dict(settings: Any) -> dict[str, Any]:
    """A settings dataclass as plain JSON values (tuples as lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(settings).items()}


def settings_problems(cls: type, saved: Any) -> list[str]:
    """What is wrong with ``saved`` as the stored settings of a ``cls`` run: not a dict,
    empty, keys ``cls`` does not have, values of the wrong type."""
    if not isinstance(saved, dict):
        return [f"settings must be a dict, not {type(saved).__name__}"]
    if not saved:
        return ["settings are empty"]
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    problems = [f"settings key {k!r} is not one this version knows" for k in saved if k not in names]
    for name in names:
        if name in saved and not _fits(saved[name], hints[name]):
            problems.append(f"settings {name!r} is {saved[name]!r}, not a {_type_name(hints[name])}")
    return problems


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON-like value fits a settings field's type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is tuple:
        return (isinstance(value, (list, tuple)) and len(value) == len(args)
                and all(_fits(v, a) for v, a in zip(value, args)))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def resumed_settings(cls: type, saved: dict[str, Any], given: Any, local: Iterable[str],
                     where: str = "last.pt") -> Any:
    """The settings a resumed run continues with: the run's own (``saved``, validated by
    :func:`settings_problems`), except the ``local`` ones, which only affect this
    machine or this invocation and come from ``given``. Raises :class:`RunError`, one
    line per problem, naming ``where`` they were stored."""
    problems = settings_problems(cls, saved)
    if problems:
        raise RunError("\n".join(f"{where}: cannot resume: {p}" for p in problems))
    merged = dict(saved)
    for k in local:
        merged[k] = getattr(given, k)
    merged["resume"] = True
    hints = typing.get_type_hints(cls)
    for k, v in merged.items():
        if isinstance(v, list) and typing.get_origin(hints[k]) is tuple:
            merged[k] = tuple(v)
    return cls(**merged)


def finite_positive(name: str, value: float) -> str | None:
    """A problem line unless ``value`` is a finite number > 0."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        return f"{name} must be a finite number > 0, not {value}"
    return None


# ---------------------------------------------------------------------------- the folder


# the files a run folder holds (their temp files, left by a kill mid-save, are removed on start)
ARTIFACTS = ("settings.json", "metrics.csv", "curves.png", "last.pt", "model.pt", "model.onnx", "model.int8.onnx",
             "final_metrics.json")


class RunFolder:
    """One training run's folder (see the module docstring). ``writer``: whether this
    process writes it (under ``torchrun`` only rank 0 does; the others read it)."""

    def __init__(self, out: str | os.PathLike, curves: Curves, writer: bool = True) -> None:
        self.out = Path(out)
        self.curves = curves
        self.writer = writer
        self.last = self.out / "last.pt"
        self.model = self.out / "model.pt"
        self.metrics_csv = self.out / "metrics.csv"

    def prepare(self, export: str | None = None) -> None:
        """Check that the folder (and ``export``, a checkpoint path) can be written,
        before any work, and remove temp files a killed save left. Raises :class:`RunError`."""
        check_writable_dir(self.out, "--out")
        if export:
            export_path = Path(export)
            if export_path.is_dir():
                raise RunError(f"--export {export}: is a folder, not a checkpoint file path")
            check_writable_dir(export_path.parent if str(export_path.parent) else Path("."), "--export")
        if not self.writer:
            return
        targets = [self.out / name for name in ARTIFACTS]
        if export:
            targets += [Path(export), Path(export).with_suffix(".onnx"), Path(export).with_suffix(".int8.onnx")]
        for target in targets:
            if target.parent.is_dir():
                for stray in target.parent.glob(f".{target.name}.*.tmp"):
                    stray.unlink(missing_ok=True)
                    log.warning("removed %s, left by an interrupted save", stray)

    def read_resume(self, kind: str, needs: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(settings, training_state)`` of ``last.pt``, for a ``kind`` run whose training
        state holds ``needs``. Raises :class:`CheckpointError` when it is missing,
        damaged, of another kind or holds no training state this run can continue."""
        from training.checkpoint import read_checkpoint, training_state_problems

        ckpt = read_checkpoint(self.last, kind)
        state = ckpt.get("training_state")
        if state is None:
            raise CheckpointError(f"{self.last}: holds no training state to resume from")
        problems = training_state_problems(state, needs)
        settings = ckpt.get("settings", {})
        widths = settings.get("widths") if isinstance(settings, dict) else None
        if widths is not None and list(widths) != list(ckpt["model_config"].get("widths", [])):
            problems.append(f"its settings' widths {widths} are not its network's {ckpt['model_config'].get('widths')}")
        epochs, epoch = settings.get("epochs") if isinstance(settings, dict) else None, state.get("epoch")
        if isinstance(epochs, int) and isinstance(epoch, int) and epoch > epochs:
            problems.append(f"training_state epoch {epoch} is past the run's {epochs} epochs")
        if problems:
            raise CheckpointError("\n".join(f"{self.last}: cannot resume: {p}" for p in problems))
        return settings, state

    def write_settings(self, settings: dict[str, Any]) -> None:
        """``settings.json``, creating the folder (after the data loaded: a run that
        cannot start leaves none behind)."""
        if self.writer:
            self.out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.out / "settings.json", json.dumps(settings, indent=2) + "\n")

    def save_epoch(self, ckpt: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        """After an epoch: ``last.pt`` (resumable), ``metrics.csv`` and ``curves.png``."""
        from training.checkpoint import save_checkpoint

        if not self.writer:
            return
        save_checkpoint(ckpt, self.last)
        write_metrics(self.metrics_csv, rows)
        try:
            plot_curves(self.metrics_csv, self.out / "curves.png", self.curves)
        except Exception as err:  # noqa: BLE001 - a plot never stops a training run
            log.warning("could not draw %s: %s", self.out / "curves.png", err)

    def finish(self, final: dict[str, Any], export: str | None = None) -> list[Path]:
        """The final checkpoint as ``model.pt`` (and ``export``), each with its ready-to-run
        ONNX graphs beside it, and ``final_metrics.json``; returns the paths written."""
        from training.checkpoint import save_checkpoint
        from training.export import export_graphs

        if not self.writer:
            return []
        written = []
        for path in [self.model] + ([Path(export)] if export else []):
            written.append(save_checkpoint(final, path))
            written += export_graphs(path)
        write_text_atomic(self.out / "final_metrics.json", json.dumps(final["metrics"], indent=2) + "\n")
        return written


def restore(training: Any, state: dict[str, Any], where: Path) -> None:
    """``training.load_state_dict(state)``, a :class:`CheckpointError` when the stored
    state does not fit the run (tensors of other shapes, a foreign optimizer state)."""
    try:
        training.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as err:
        detail = " ".join(str(err).strip().splitlines()[:1])[:160]
        raise CheckpointError(f"{where}: cannot resume: its training state does not fit this run ({detail})") from err


def check_writable_dir(folder: Path, option: str) -> None:
    """Raise :class:`RunError` naming ``option`` unless files can be written in ``folder``
    (proved with a temp file in it, or, where it does not exist yet, in the nearest
    existing folder above it, which is left as it was)."""
    probe_in = folder
    while not probe_in.exists():
        if probe_in.parent == probe_in:
            break
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        what = "is a file, not a folder" if probe_in == folder else f"{probe_in} is a file, not a folder"
        raise RunError(f"{option} {folder}: {what}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", suffix=".tmp", dir=probe_in)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise RunError(f"{option} {folder}: cannot write there ({err.strerror or err})") from err


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, text.encode())


def write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    """``rows`` as a CSV (columns: the first row's keys, in order), written atomically."""
    import io

    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in rows[0]})
    write_text_atomic(path, buf.getvalue())


def plot_curves(metrics_csv: str | os.PathLike, out: str | os.PathLike, curves: Curves) -> Path:
    """The ``curves`` columns of a run's ``metrics.csv`` per epoch: losses left (log
    scale), scores right (as percentages)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    ep = [int(r["epoch"]) for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for name in curves.loss:
        a1.plot(ep, [float(r[name]) for r in rows], "o-", label=name.replace("_", " "))
    a1.set_xlabel("epoch"), a1.set_ylabel("loss"), a1.set_yscale("log"), a1.legend(), a1.set_title("loss")
    for name in curves.score:
        a2.plot(ep, [100 * float(r[name]) for r in rows], "o-", label=name.replace("_", " "))
    a2.set_xlabel("epoch"), a2.set_ylabel(curves.score_label), a2.legend(), a2.grid(alpha=0.3)
    a2.set_title("held-out figures")
    fig.tight_layout()
    out = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, dpi=110, format="png")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
    return out


def epoch_bar(enabled: bool, total: int, desc: str, unit: str = "img") -> Any:
    """A progress bar for one epoch (``update(n)``, ``set_postfix``, ``close``), or a
    silent stand-in when progress bars are off."""
    if enabled:
        from tqdm import tqdm

        return tqdm(total=total, unit=unit, unit_scale=True, desc=desc, leave=False, dynamic_ncols=True)
    return _NoBar()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **kw: Any) -> None:
        pass

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------- command line


def common_arguments(p: argparse.ArgumentParser, d: Any, *, lr_help: str, batch_help: str) -> None:
    """The options every trainer has, with the defaults of the settings ``d``."""
    p.add_argument("--data-dir", default=d.data_dir,
                   help="folder with the four MNIST IDX .gz files (default: $MNIST_DIR, else "
                        "~/.cache/realtime-digits/mnist)")
    p.add_argument("--download", action="store_true", help="download MNIST into the data folder when files are missing")
    p.add_argument("--out", default=d.out, help="run folder: settings, metrics.csv, curves.png, last.pt (resumable), "
                                                "model.pt and its ONNX graphs")
    p.add_argument("--epochs", type=int, default=d.epochs, help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=batch_help)
    p.add_argument("--lr", type=float, default=d.lr, help=lr_help)
    p.add_argument("--widths", type=int, nargs=3, default=list(d.widths), metavar=("W28", "W14", "W7"),
                   help="conv channels of the three stages (at 28, 14 and 7 px high)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="random seed (a run is deterministic for a seed, thread count and device)")
    p.add_argument("--threads", type=int, default=d.threads, help="CPU threads for PyTorch")
    p.add_argument("--device", default=d.device,
                   help="where the network trains: cpu, or cuda (cuda:N) on a machine with an NVIDIA GPU")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last.pt (its own settings; only --data-dir, "
                        "--download, --threads, --device, --export, --no-progress and the like are taken "
                        "from this command)")
    p.add_argument("--export", default=d.export, metavar="PATH",
                   help="also write the final checkpoint here (e.g. assets/digits.pt), with its ONNX graphs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (one summary line per epoch only)")


def common_problems(a: argparse.Namespace) -> list[str]:
    """What is wrong with the common options' values."""
    problems = [f"--{name.replace('_', '-')} must be >= 1, not {getattr(a, name)}"
                for name in ("epochs", "batch_size", "threads") if getattr(a, name) < 1]
    problems += [p for p in (finite_positive("--lr", a.lr),) if p]
    if any(w < 1 for w in a.widths):
        problems.append(f"--widths must be positive channel counts, not {' '.join(map(str, a.widths))}")
    kind = a.device.split(":")[0]
    if kind not in ("cpu", "cuda"):
        problems.append(f"--device {a.device}: expected cpu or cuda")
    elif kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            problems.append(f"--device {a.device}: PyTorch sees no CUDA GPU here (use --device cpu)")
    return problems


def run_cli(work: Callable[[], dict[str, Any]], out: str, resume_command: str,
            summary: Callable[[dict[str, Any]], str], quiet: bool = False) -> int:
    """A trainer's CLI around ``work()``: Ctrl-C and SIGTERM stop it between two steps
    (exit 130, saying how to resume from the last complete epoch), bad data, checkpoints
    or outputs are one ``error:`` line per problem on stderr (exit 2), success prints
    ``summary(final checkpoint)``. ``quiet``: the same exit codes, nothing printed (the
    ranks but rank 0 under torchrun)."""
    from training.data import DataError

    logging.basicConfig(level=logging.WARNING if not quiet else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    say = (lambda *a, **k: None) if quiet else print
    restore = interrupt_on_signals()
    try:
        final = work()
    except (DataError, CheckpointError, RunError) as err:
        for line in str(err).splitlines() or [type(err).__name__]:
            say(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        say(f"\ninterrupted: the last complete epoch is in {Path(out) / 'last.pt'}; "
            f"continue with: {resume_command} --out {out} --resume", file=sys.stderr)
        return 130
    finally:
        restore()
    say(summary(final), flush=True)
    return 0


def interrupt_on_signals() -> Callable[[], None]:
    """Ctrl-C and SIGTERM both stop training between two Python steps with
    KeyboardInterrupt, so the message is printed and the last complete epoch's
    checkpoint (written atomically) is what remains. SIGINT is set explicitly because a
    job started in the background by a shell inherits it as ignored. Returns the
    function that puts the previous handlers back."""
    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, h in previous.items():
            signal.signal(sig, h)

    return restore


def parse_or_exit(p: argparse.ArgumentParser, argv: Sequence[str] | None,
                  check: Callable[[argparse.Namespace], list[str]]) -> argparse.Namespace:
    """Parsed options; argparse's usage and one error line (exit 2) for the first problem
    ``check`` finds."""
    a = p.parse_args(argv)
    problems = check(a)
    if problems:
        p.error(problems[0])
    return a
