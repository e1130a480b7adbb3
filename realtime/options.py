"""The command-line options every tool that runs the recognizer shares (the live CLI, the
batch job, the web app): which checkpoints, which engine, which settings. Parsing them
imports nothing heavy, so a bad argument is refused before any model loads."""

from __future__ import annotations

import argparse

__all__ = ["BACKEND_CHOICES", "add_model_options", "check_settings"]

# The recognizer's backends (realtime.recognizer.BACKENDS; a test keeps the two equal),
# written out so that parsing the arguments does not import the recognizer.
BACKEND_CHOICES = ("auto", "int8", "onnx", "torch")


def add_model_options(p: argparse.ArgumentParser, *, backend: str = "auto", settings: bool = True,
                      min_confidence: str = "hide digits whose probability is below this, 0-1 (rejects "
                                            "non-digits; default: the recognizer's own)") -> None:
    """``--weights``, ``--pair-weights``, ``--seq-weights``, ``--min-confidence``,
    ``--backend`` and (with ``settings``) ``--set`` and ``--config``."""
    p.add_argument("--weights", default=None,
                   help="digit checkpoint or graph to load (default: $DIGITS_WEIGHTS, else the shipped digits.pt)")
    p.add_argument("--pair-weights", default=None,
                   help="pair reader checkpoint, which reads two touching digits whole (default: "
                        "$DIGITS_PAIR_WEIGHTS, else the shipped pairs.pt; '' turns it off)")
    p.add_argument("--seq-weights", default=None,
                   help="number reader checkpoint, which reads a blob of touching digits whole and helps choose "
                        "how to split it (default: $DIGITS_SEQ_WEIGHTS, else the shipped sequences.pt; "
                        "'' turns it off)")
    p.add_argument("--min-confidence", type=float, default=None, help=min_confidence)
    p.add_argument("--backend", choices=BACKEND_CHOICES, default=backend,
                   help="inference engine: int8 ONNX Runtime (fastest; needs calibration images in the "
                        "checkpoint), float32 ONNX Runtime, PyTorch eager, or auto (the fastest available)")
    if settings:
        p.add_argument("--set", action="append", default=[], metavar="STAGE.FIELD=VALUE", dest="settings",
                       help="change one recognizer setting, e.g. --set segment.line_frac=0.3 or --set "
                            "split.seq_weight=0 (repeatable; the fields are those of "
                            "realtime.recognizer.RecognizerConfig)")
        p.add_argument("--config", default=None, metavar="FILE",
                       help="a JSON or TOML file of recognizer settings by stage (--set is applied after it)")


def check_settings(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """Refuse bad ``--min-confidence``, ``--set`` and ``--config`` values through
    ``p.error`` (one line, exit 2); the settings are checked by building them, which
    imports the recognizer only when some were given."""
    if a.min_confidence is not None and not 0.0 <= a.min_confidence <= 1.0:
        p.error("--min-confidence must be between 0 and 1")
    if getattr(a, "settings", None) or getattr(a, "config", None):
        from realtime.recognizer import configure

        try:
            configure(settings=a.settings, file=a.config)
        except ValueError as err:
            p.error(str(err))
