"""The Python API: ``Recognizer.load()``, ``detect(frame)``, ``classify(crops)``.

``detect`` reads as the list of its stages, each under the stage timer, in the order the
data flows: the ink map, the sheet, the blobs on it (``realtime.segment``,
``realtime.sheet``); the crops each blob may be read as (``realtime.split``); the
readers (``realtime.readers``); the choice of one reading per blob. Reading is a
cascade: every blob is read whole first, and only the wide blobs that reading leaves
unsure are cut into stretches for a second digit batch and the pair reader, and only
the blobs whose readings stay close go to the number reader.

Every knob is a field of a frozen config dataclass, one per stage, gathered in
:class:`RecognizerConfig`; :func:`configure` sets any of them from ``stage.field=value``
strings (the CLI's ``--set``) or a JSON/TOML file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from realtime import split
from realtime.assets import ASSETS
from realtime.readers import (BACKENDS, DigitReader, NumberReader, PairReader, PairReadings, load_network,
                              reading_scores)
from realtime.scale import ScaleConfig, measure, paper_scale, to_frame
from realtime.segment import Blob, CropConfig, Page, SegmentConfig, Timer, crop_ink, least_height, segment, untimed
from realtime.sheet import SheetConfig
from realtime.split import SplitConfig
from training import fields

log = logging.getLogger(__name__)

__all__ = ["BACKENDS", "Detection", "Recognizer", "RecognizerConfig", "configure", "default_weights"]

WEIGHTS_ENV = "DIGITS_WEIGHTS"
DEFAULT_WEIGHTS = ASSETS / "digits.pt"
PAIR_WEIGHTS_ENV = "DIGITS_PAIR_WEIGHTS"
DEFAULT_PAIR_WEIGHTS = ASSETS / "pairs.pt"
SEQ_WEIGHTS_ENV = "DIGITS_SEQ_WEIGHTS"
DEFAULT_SEQ_WEIGHTS = ASSETS / "sequences.pt"
DEFAULT_MIN_CONFIDENCE = 0.4

@dataclass(frozen=True)
class RecognizerConfig:
    """Every knob of the recognizer, one frozen dataclass per stage."""

    scale: ScaleConfig = field(default_factory=ScaleConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    sheet: SheetConfig = field(default_factory=SheetConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    # a detection is shown from this confidence (the tracker applies it after smoothing):
    # precision barely changes from 0.3 to 0.7 while recall falls
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    # a digit shorter than this share of the page's typical digit is a speck (paper grain,
    # a dot of texture): one hand writes one page within a few times one size (the
    # renderer's 30-80 px on one frame is 2.7x), so 1/7 of the typical height is no digit
    min_relative_height: float = 0.15
    # the typical height is taken from the digits read at least this sure (a clear digit,
    # not the doubtful readings of texture or of a whole sheet's outline)
    sure_confidence: float = 0.9


def typical_height(detections: Sequence[Detection], sure: float) -> float | None:
    """The page's typical digit height: the median height of the detections read at
    least ``sure``, each weighted by its height (``None`` when there are none)."""
    heights = np.array(sorted(d.box[3] for d in detections if d.confidence >= sure), np.float64)
    if not len(heights):
        return None
    cum = np.cumsum(heights)
    return float(heights[np.searchsorted(cum, 0.5 * cum[-1])])


def drop_specks(detections: Sequence[Detection], ratio: float, sure: float) -> list[Detection]:
    """``detections`` without those shorter than ``ratio`` times :func:`typical_height`."""
    ref = typical_height(detections, sure)
    if ref is None or ratio <= 0:
        return list(detections)
    return [d for d in detections if d.box[3] >= ratio * ref]


def _parse_value(text: str, kind: type, name: str) -> Any:
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name} wants true or false, not {text!r}")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name} wants a{'n' if kind is int else ''} {kind.__name__}, not {text!r}") from None


def _replace(config: Any, path: list[str], value: Any, name: str) -> Any:
    """``config`` with the field at ``path`` (nested dataclasses) set to ``value``
    (a string is parsed by the field's type)."""
    known = {f.name: f for f in dataclasses.fields(config)}
    if path[0] not in known:
        raise ValueError(f"unknown setting {name!r} (known here: {', '.join(sorted(known))})")
    current = getattr(config, path[0])
    if dataclasses.is_dataclass(current):
        if len(path) == 1:
            raise ValueError(f"{name!r} is a group of settings; name one of its fields")
        return dataclasses.replace(config, **{path[0]: _replace(current, path[1:], value, name)})
    if len(path) > 1:
        raise ValueError(f"unknown setting {name!r}")
    kind = type(current)
    if isinstance(value, str) and kind is not str:
        value = _parse_value(value, kind, name)
    elif kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{name} wants a {kind.__name__}, not {value!r}")
    return dataclasses.replace(config, **{path[0]: value})


def _flatten(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def configure(base: RecognizerConfig | None = None, settings: Sequence[str] = (),
              file: str | os.PathLike | None = None) -> RecognizerConfig:
    """``base`` (default: the shipped config) with the settings of a JSON or TOML
    ``file`` (``{"split": {"seq_weight": 0.1}}``), then each ``stage.field=value`` of
    ``settings`` applied. Raises ``ValueError`` with a one-line message."""
    config = base or RecognizerConfig()
    items: list[tuple[str, Any]] = []
    if file is not None:
        path = Path(file)
        try:
            text = path.read_text()
            if path.suffix.lower() == ".toml":
                import tomllib

                tree = tomllib.loads(text)
            else:
                tree = json.loads(text)
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read config file {path}: {err}") from None
        if not isinstance(tree, dict):
            raise ValueError(f"config file {path} must hold a table of settings")
        items += list(_flatten(tree))
    for s in settings:
        name, sep, value = s.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"a setting is NAME=VALUE (e.g. split.seq_weight=0.1), not {s!r}")
        items.append((name.strip(), value.strip()))
    for name, value in items:
        config = _replace(config, name.split("."), value, name)
    return config


@dataclass
class Detection:
    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels, tight around the ink
    digit: int
    confidence: float
    probs: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"box": [int(v) for v in self.box], "digit": int(self.digit), "confidence": round(float(self.confidence), 4)}


@contextlib.contextmanager
def opencv_single_thread() -> Iterator[None]:
    """Run the enclosed OpenCV calls on one thread. On frames up to 1280x720 OpenCV's
    thread pool costs more than it gains (connected components 2x slower, the whole
    pipeline 10% slower with 2 threads on 2 cores); the ``threads`` setting goes to the
    digit reader instead."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def as_image(image: Any, what: str = "image") -> np.ndarray:
    """A frame or crop as uint8 gray [H, W] or BGR [H, W, 3] (BGRA: alpha dropped).

    Accepted: uint8; uint16 (scaled to 8 bits); float in [0, 1]; bool (True = white);
    gray [H, W] or [H, W, 1], BGR or BGRA. Raises ``TypeError`` for what is not an array
    and ``ValueError`` for an empty array or a shape that is no image."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{what} must be a numpy array (H x W gray or H x W x 3 BGR), not {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"{what} must be H x W (gray) or H x W x 3 (BGR) or x 4 (BGRA), not shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"{what} is empty (shape {image.shape})")
    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError(f"{what} holds NaN or infinite values")
        image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8, uint16, float in [0, 1] or bool, not {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    return image


def default_weights() -> Path:
    """The digit checkpoint: ``$DIGITS_WEIGHTS``, else ``assets/digits.pt``."""
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env) if env else DEFAULT_WEIGHTS


def optional_weights(given: str | os.PathLike | None, env_name: str, default: Path) -> Path | None:
    """A second reader's checkpoint: ``given`` ("" for none), else ``$env_name`` (same),
    else ``default`` when it exists."""
    if given is not None:
        return Path(given) if str(given) else None
    env = os.environ.get(env_name)
    if env is not None:
        return Path(env) if env else None
    return default if default.is_file() else None


class Recognizer:
    """Finds and reads handwritten digits. Stateless per frame (tracking lives elsewhere)."""

    def __init__(self, digits: DigitReader, pairs: PairReader | None = None, numbers: NumberReader | None = None,
                 config: RecognizerConfig | None = None, threads: int = 1) -> None:
        self.digit_reader = digits
        self.pair_reader = pairs
        self.number_reader = numbers
        self.config = config or RecognizerConfig()
        self.threads = threads

    @classmethod
    def load(cls, weights: str | os.PathLike | None = None, *, backend: str = "auto", threads: int = 1,
             min_confidence: float | None = None, pair_weights: str | os.PathLike | None = None,
             seq_weights: str | os.PathLike | None = None, config: RecognizerConfig | None = None) -> Recognizer:
        """Load the digit reader (default: ``$DIGITS_WEIGHTS`` or ``assets/digits.pt``), the
        pair reader (``pair_weights``; default: ``$DIGITS_PAIR_WEIGHTS`` or
        ``assets/pairs.pt`` when that file exists; ``""``: none) and the number reader
        (``seq_weights``; likewise ``$DIGITS_SEQ_WEIGHTS`` or ``assets/sequences.pt``).
        ``min_confidence`` overrides ``config.min_confidence``. Raises
        :class:`training.errors.CheckpointError` with a one-line message, and
        ``ValueError`` for a bad option."""
        config = config or RecognizerConfig()
        if min_confidence is not None:
            config = dataclasses.replace(config, min_confidence=float(min_confidence))
        if not 0.0 <= config.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1, not {config.min_confidence}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        if int(threads) < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        threads = int(threads)
        digits = DigitReader(load_network(Path(weights) if weights else default_weights(), "digits"), backend, threads)
        pair_path = optional_weights(pair_weights, PAIR_WEIGHTS_ENV, DEFAULT_PAIR_WEIGHTS)
        pairs = PairReader(load_network(pair_path, "pairs"), backend) if pair_path is not None else None
        seq_path = optional_weights(seq_weights, SEQ_WEIGHTS_ENV, DEFAULT_SEQ_WEIGHTS)
        numbers = NumberReader(load_network(seq_path, "numbers"), backend) if seq_path is not None else None
        return cls(digits, pairs, numbers, config, threads)

    def __call__(self, image: Any, **kwargs: Any) -> Any:
        """``rec(image_or_path)``: a :class:`realtime.results.Result` for a numpy array, a
        path or a PIL image (see :func:`realtime.results.recognize` for the options)."""
        from realtime.results import recognize

        return recognize(self, image, **kwargs)

    def with_config(self, config: RecognizerConfig) -> Recognizer:
        """A recognizer with other settings that shares these loaded readers."""
        return Recognizer(self.digit_reader, self.pair_reader, self.number_reader, config, self.threads)

    # ---- what the rest of the program reads off a recognizer ------------------------

    @property
    def min_confidence(self) -> float:
        return self.config.min_confidence

    @property
    def weights_path(self) -> str:
        return self.digit_reader.net.path

    @property
    def backend(self) -> Any:
        """The digit reader's inference backend (``.name`` says which)."""
        return self.digit_reader.backend

    @property
    def pair_backend(self) -> Any:
        return None if self.pair_reader is None else self.pair_reader.backend

    @property
    def seq_backend(self) -> Any:
        return None if self.number_reader is None else self.number_reader.backend

    @property
    def model(self) -> Any:
        """The digit network as a PyTorch module (float32)."""
        return self.digit_reader.net.model

    @property
    def class_names(self) -> list[str]:
        return list(self.digit_reader.net.class_names)

    @property
    def mean(self) -> float:
        return self.digit_reader.net.mean

    @property
    def std(self) -> float:
        return self.digit_reader.net.std

    @property
    def size(self) -> int:
        return self.digit_reader.net.size

    # ---- frames -----------------------------------------------------------------------

    def detect(self, frame: np.ndarray, plain: bool = False, min_confidence: float | None = None,
               timer: Timer = untimed) -> list[Detection]:
        """All digits in a frame (BGR or gray, see :func:`as_image`), in reading order,
        confidence >= ``min_confidence`` (default: the config's; a tracker passes 0 to
        see the evidence it smooths). ``plain``: crops stretched to 28x28 instead of
        MNIST-style (a baseline for comparison). ``timer(stage)``: a context manager
        around each stage, for profiling."""
        threshold = self.min_confidence if min_confidence is None else float(min_confidence)
        with opencv_single_thread():
            page = self.page(frame, timer)
            chosen = self.read_blobs(page.ink, page.blobs, plain, timer, page.pieces) if page.blobs or page.pieces else []
        out = [Detection(box=to_frame(c.box, page.scale), digit=int(p.argmax()), confidence=float(p.max()), probs=p)
               for c, p in chosen]
        out = [d for d in out if d.digit < self.digit_reader.digits]
        with timer("choose"):
            out = drop_specks(out, self.config.min_relative_height, self.config.sure_confidence)
        return [d for d in out if d.confidence >= threshold]

    def page(self, frame: np.ndarray, timer: Timer = untimed) -> Page:
        """A frame's ink map, its sheet and the blobs on it (the stages before reading),
        on a copy reduced to the size its marks need (``page.scale``; boxes in its pixels)."""
        cfg = self.config

        def scale(gray: np.ndarray, paper: np.ndarray | None, reduced: np.ndarray) -> tuple[float, int]:
            m = measure(gray, paper, cfg.scale, cfg.segment, reduced)
            return m.factor, paper_scale(None if m.stroke is None else m.stroke * min(1.0, m.factor), cfg.segment)

        with opencv_single_thread():
            return segment(as_image(frame, "frame"), cfg.segment, cfg.sheet, scale, timer)

    def read_blobs(self, ink: np.ndarray, blobs: Sequence[Blob], plain: bool = False, timer: Timer = untimed,
                   pieces: Sequence[Blob] = ()) -> list[tuple[Blob, np.ndarray]]:
        """Read the blobs of one ink map (and the ``pieces`` too small to be digits, within
        unions): ``(crop, class probabilities)`` per digit found."""
        min_height = least_height(ink.shape, self.config.segment)
        cfg = self.config.split
        with_pairs = self.pair_reader is not None and not plain
        with timer("split"):
            plan = split.propose(blobs, cfg, pieces, ink, min_height)
        with timer("digit reader"):
            digits = self.digit_reader.read(ink, plan.crops, plain)
        with timer("split"):
            first = len(plan.crops)
            plan = split.refine(plan, digits, cfg, pairs=with_pairs)
        if len(plan.crops) > first:
            with timer("digit reader"):
                digits = digits.extend(self.digit_reader.read(ink, plan.crops[first:], plain))
        with timer("pair reader"):
            pairs = self.pair_reader.read(ink, plan.pair_crops) if with_pairs else PairReadings.empty()
        with timer("split"):
            unsplit = split.doubted(plan, pairs, cfg.digits_gate)
            dropped = split.doubted(plan, pairs, cfg.digits_drop)
            by_reading = self.number_reader is not None and not plain
            opts = split.options(plan, digits, pairs, unsplit, by_reading, cfg)
            asked = split.contested(opts, cfg)
        with timer("number reader"):
            logits = self.number_reader.read(ink, [blobs[n] for n in asked]) if asked else []
            likes = {n: reading_scores(lg, opts[n].texts()) for n, lg in zip(asked, logits)}
        with timer("choose"):
            return split.choose(plan, opts, digits, pairs, dropped, likes, cfg)

    # ---- single-digit crops -----------------------------------------------------------

    def classify(self, crops: Sequence[np.ndarray], plain: bool = False) -> list[tuple[int, float]]:
        """Read single-digit images as a camera sees them (any size; see :func:`as_image`
        for the accepted types; dark ink on light paper). Returns ``(digit, confidence)``
        per crop, ``(-1, 0.0)`` for a crop with no ink (or an empty one). A crop whose
        digit cannot be cut from its paper is read as a whole frame (its surest digit)."""
        if isinstance(crops, np.ndarray):
            raise TypeError("classify takes a list of crops (classify([crop]) for one)")
        net = self.digit_reader.net
        batch = np.zeros((len(crops), net.size, net.size), np.float32)
        has_ink = np.zeros(len(crops), bool)
        for i, crop in enumerate(crops):
            if isinstance(crop, np.ndarray) and crop.size == 0:
                continue
            ink, mask = crop_ink(as_image(crop, f"crop {i}"), self.config.segment, self.config.crop)
            if mask is None:
                continue
            has_ink[i] = True
            batch[i] = (fields.plain_resize(np.where(mask, fields.as_float_ink(ink), 0.0), net.size) if plain
                        else fields.to_mnist(ink, mask, size=net.size, box=net.box))
        probs = self.digit_reader.read_fields(batch).probs
        res = []
        for i, (ok, p) in enumerate(zip(has_ink, probs)):
            # the caller says this is a digit: answer with the likeliest one (a "not a
            # digit" class, when the model has one, only lowers that confidence)
            d = int(p[: self.digit_reader.digits].argmax())
            res.append((d, float(p[d])) if ok else self._read_as_page(crops[i]))
        return res

    def _read_as_page(self, crop: Any) -> tuple[int, float]:
        """A crop whose ink could not be told from its paper as one digit (grainy or
        textured paper binarizes into one mass touching every border) read as a frame:
        the surest digit the page stages find, ``(-1, 0.0)`` when there is none."""
        if not isinstance(crop, np.ndarray) or crop.size == 0:
            return -1, 0.0
        found = self.detect(crop)
        if not found:
            return -1, 0.0
        best = max(found, key=lambda d: d.confidence)
        return best.digit, best.confidence
