"""The Python API: ``Recognizer.load()``, ``detect(frame)``, ``classify(crops)``.

The network runs on a frame's crops in at most two batches: every blob first, then the
cut-lattice parts of the blobs that reading leaves unsure (and the pair reader on their
stretches, in one batch of its own). The checkpoint is
rebuilt with PyTorch and, when onnxruntime is installed, exported in memory to ONNX
and run by ONNX Runtime, which is 2-4x faster than PyTorch eager for a net this small
on a CPU; PyTorch eager stays as the fallback (``backend="torch"``). When the
checkpoint carries calibration images, the ONNX graph is quantized to int8 at load
time (static, per-channel weights, ~0.1 s; the one-channel stem stays float32):
another ~2.6x on CPUs with int8 dot products, for at most 0.01 points of MNIST accuracy
(``backend="onnx"`` keeps float32).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from realtime import native, pairs, sequences
from realtime.normalize import as_float_ink, plain_resize, to_mnist, to_mnist_batch
from realtime.segment import (
    Candidate,
    SegmentConfig,
    binarize,
    ink_gray,
    ink_map,
    ink_thresholds,
    Timer,
    best_chain,
    chains_by_reading,
    cut_lattice,
    lattice_points,
    lattice_stretches,
    merge_pieces,
    piece_pairs,
    segment,
    untimed,
)
from training.checkpoint import CheckpointError, load_checkpoint

log = logging.getLogger(__name__)

WEIGHTS_ENV = "DIGITS_WEIGHTS"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "assets" / "digits.pt"
PAIR_WEIGHTS_ENV = "DIGITS_PAIR_WEIGHTS"
DEFAULT_PAIR_WEIGHTS = DEFAULT_WEIGHTS.with_name("pairs.pt")
SEQ_WEIGHTS_ENV = "DIGITS_SEQ_WEIGHTS"
DEFAULT_SEQ_WEIGHTS = DEFAULT_WEIGHTS.with_name("sequences.pt")
# chosen on rendered scenes (seed 7, not the reported set): precision barely changes from
# 0.3 to 0.7 while recall falls, so a low threshold; the tracker applies it after smoothing
DEFAULT_MIN_CONFIDENCE = 0.4
# Reading a blob as several touching digits: the chain of parts whose confidences have
# the highest product, each part also scoring SPLIT_BONUS in log units, every part at
# least SPLIT_MIN_CONF, and beating the whole blob's reading by a factor of
# 1 + SPLIT_MARGIN. The network's "not a digit" class does most of the judging: a
# piece of a digit, or two digits read as one, scores low on every digit, so the
# thresholds can be loose: a part read at only SPLIT_MIN_CONF still lets the chain through
# a long blob, so its other digits are read (the weak part itself then falls below the
# detection threshold). A blob that may hold touching digits gets CUTS_PER_WIDTH cut
# points per blob height of width. Chosen on rendered touching digits (seeds 100-111) and the
# seed-7 scene set, never on the reported seed-2026 set or the photos.
SPLIT_BONUS = 0.1
SPLIT_MARGIN = 0.0
SPLIT_MIN_CONF = 0.03
CUTS_PER_WIDTH = 4.0
# Two candidates that may be pieces of one broken digit (segment.piece_pairs) are read as
# that digit when its reading, at least MERGE_MIN_CONF and a digit, scores higher than
# the pieces' own readings together (each also scoring SPLIT_BONUS). Chosen on seed 7.
MERGE_MIN_CONF = 0.5
# A blob the digit network reads whole as a digit at SURE_WHOLE or more, and narrow
# enough to be one, is taken as read: it gets no cut lattice and goes to no pair reader.
# The lattices and pair crops of the other blobs are classified in a second batch. On
# the tuning scenes (seed 7, touching chains on seeds 100-111) every digit read was the
# same from 0.8 to 0.99 as with lattices for every blob from split_min_aspect, with 30%
# fewer crops through the network per frame.
SURE_WHOLE = 0.8
# Touching digits read whole by the pair reader (realtime.pairs): a blob from
# PAIR_MIN_ASPECT wide, and every stretch of a cut lattice from PAIR_MIN_ASPECT to
# PAIR_MAX_ASPECT blob heights wide, is also read as two digits. Its confidence is the
# product of "is a pair" and the two digits' confidences, and it scores like two parts
# of a chain (2 x SPLIT_BONUS). Chosen on seed 7 and seeds 100-111 (a penalty on pair
# readings, and stretches only from 0.9 or 1.1 heights, each bought precision with
# touching digits read).
PAIR_MIN_ASPECT = 0.6
PAIR_MAX_ASPECT = 2.6
# A blob the pair reader sees (wide, not read whole with confidence) is not split, by
# its lattice or the pair reader, when the pair reader's "these are digits" output for
# the whole blob is below DIGITS_GATE: a word or a letter cut at its stems reads as a
# chain of 1s, and an n, u or H as two 1s side by side. Such a blob is still read whole
# and may still be joined with a neighbour into one digit (the top and bottom of a
# broken 5 are no digits on their own either). Below DIGITS_DROP it is not read at all:
# the pair reader is sure it is no digits, and the digit network, not sure of it
# either, would otherwise name its nearest digit (an A as a 4, an r as a 1). Chosen on
# the tuning scenes (seeds 7, 8, 9, touching chains on seeds 100-199, distractor sheets
# on seeds 100-129): a gate of 0.95 bought letters with touching digits; a drop of 0.2
# kept a few more letters out (distractor precision 0.954 against 0.951) but also two
# of twelve digits written flat and wide, which the pair reader doubts too; never on
# the reported set or the tests' sheets.
DIGITS_GATE = 0.7
DIGITS_DROP = 0.05
# How much the number reader's log-likelihood of a reading (realtime.sequences) counts
# beside the digit and pair readers' own scores when a blob's readings are compared, and
# the narrowest blob (in blob heights) it is asked about. Chosen on the tuning scenes
# (benchmarks.tuning: seeds 7-9, touching chains on seeds 100-199, distractor sheets on
# seeds 100-129), never on the reported set: touching digits read 824 -> 830, 831, 831,
# 829 of 871 at weights 0.1, 0.2, 0.3, 1.0, chains 92.5% -> 93.5% at 0.2. Blobs
# narrower than 0.9 heights (single digits read below SURE_WHOLE) gained nothing from it,
# and leaving them out costs no reading on those sets.
SEQ_WEIGHT = 0.2
SEQ_MIN_ASPECT = 0.9
# The number reader is asked only about blobs where it may change the reading: some
# other reading (whole, or a chain spelling other digits) scores within SEQ_CONTEST (log
# units) of the best. On the tuning scenes 3 reads exactly what asking about every blob
# reads, with 11% fewer blobs asked, and 3 of 8 on the speed benchmark's frames.
SEQ_CONTEST = 3.0

Lattices = dict[int, tuple[int, list[tuple[int, int, int]]]]
# a chain of a blob's parts: (the digits it spells or None, its parts as (False, crop
# index) or (True, pair hypothesis index), its score)
Split = tuple[str | None, list[tuple[bool, int]], float]
# per candidate: ((its whole reading, score) or None when too wide for one digit, splits)
Options = dict[int, tuple[tuple[str, float] | None, list[Split]]]
Merges = list[tuple[int, int, int]]
# (candidate index, from point, to point, the stretch) per pair-reader crop
PairHyps = list[tuple[int, int, int, Candidate]]


@contextlib.contextmanager
def opencv_single_thread() -> Any:
    """Run the enclosed OpenCV calls on one thread. On frames up to 1280x720 OpenCV's
    thread pool costs more than it gains (measured: connected components 2x slower,
    the whole pipeline 10% slower with 2 threads on 2 cores); the ``threads`` setting
    goes to the network instead."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def _confidences(probs: np.ndarray) -> np.ndarray:
    """Each crop's best digit probability, floored: a probability that underflowed to 0
    must still have a logarithm."""
    return np.maximum(probs[:, :10].max(axis=1), 1e-12)


def _max_cuts(w: int, h: int) -> int:
    """Cut points offered in a blob's lattice: CUTS_PER_WIDTH per blob height of width."""
    return int(np.clip(round(CUTS_PER_WIDTH * w / h), 2, 10))


def _optional_weights(given: str | os.PathLike | None, env_name: str, default: Path) -> Path | None:
    """A second reader's checkpoint: ``given`` ("" for none), else ``$env_name`` (same),
    else ``default`` when it exists."""
    if given is not None:
        return Path(given) if str(given) else None
    env = os.environ.get(env_name)
    if env is not None:
        return Path(env) if env else None
    return default if default.is_file() else None


def _pair_weights(given: str | os.PathLike | None) -> Path | None:
    """The pair reader's checkpoint: ``given`` ("" for none), else ``$DIGITS_PAIR_WEIGHTS``,
    else ``assets/pairs.pt`` when it exists."""
    return _optional_weights(given, PAIR_WEIGHTS_ENV, DEFAULT_PAIR_WEIGHTS)


def _seq_weights(given: str | os.PathLike | None) -> Path | None:
    """The number reader's checkpoint: ``given`` ("" for none), else ``$DIGITS_SEQ_WEIGHTS``,
    else ``assets/sequences.pt`` when it exists."""
    return _optional_weights(given, SEQ_WEIGHTS_ENV, DEFAULT_SEQ_WEIGHTS)


def default_weights() -> Path:
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env) if env else DEFAULT_WEIGHTS


@dataclass
class Detection:
    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels, tight around the ink
    digit: int
    confidence: float
    probs: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"box": [int(v) for v in self.box], "digit": int(self.digit), "confidence": round(float(self.confidence), 4)}


class _TorchBackend:
    name = "torch"

    def __init__(self, model: torch.nn.Module, threads: int) -> None:
        self.model = model.eval()
        self.threads = threads

    def __call__(self, x: np.ndarray) -> np.ndarray:
        torch.set_num_threads(self.threads)
        with torch.inference_mode():
            return self.model(torch.from_numpy(x)).numpy()


def onnx_graph(model: torch.nn.Module, shape: tuple[int, int] = (28, 28)) -> bytes:
    """The model as an ONNX graph (float32, input ``x`` [n, 1, *shape], output ``logits``),
    exported in memory."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), torch.zeros(1, 1, *shape), buf, input_names=["x"], output_names=["logits"],
            dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, dynamo=False,
        )
    return buf.getvalue()


class _OnnxBackend:
    name = "onnxruntime"

    def __init__(self, model: torch.nn.Module, threads: int, calibration: np.ndarray | None = None,
                 shape: tuple[int, int] = (28, 28)) -> None:
        """``calibration``: normalized [N, 1, *shape] inputs; given, the graph runs in int8."""
        import onnxruntime as ort

        graph = onnx_graph(model, shape)
        disabled: list[str] = []
        if calibration is not None:
            graph = _quantize_int8(graph, calibration)
            self.name = "onnxruntime int8"
            # the propagation would move the stem's quantization before its max pool,
            # which ONNX Runtime then runs on uint8 NCHW in a slow generic kernel
            disabled = ["QDQPropagationTransformer"]
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.session = ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"],
                                            disabled_optimizers=disabled or None)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"x": x})[0]


def _stem_nodes(graph: bytes) -> list[str]:
    """Names of the graph's nodes up to and including its first max pool: the stem.

    The stem's convolution has one input channel, a shape int8 kernels handle badly:
    quantized, it took a third of the network's time for 2% of its multiply-adds
    (measured with ONNX Runtime's profiler: 0.88 of 2.5 ms for 50 crops on one thread);
    in float32 it costs 0.12 ms, and the stem's output is quantized after the pool,
    where there are 4x fewer values."""
    import onnx

    names: list[str] = []
    for node in onnx.load_from_string(graph).graph.node:
        names.append(node.name)
        if node.op_type == "MaxPool":
            return names
    return []


def _quantize_int8(graph: bytes, calibration: np.ndarray) -> bytes:
    """Static int8 quantization of an ONNX graph (QDQ, per-channel weights, activation
    ranges from ``calibration``, the checkpoint's own training images), the stem (see
    :func:`_stem_nodes`) kept in float32."""
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(np.array_split(calibration, max(1, len(calibration) // 64)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {"x": np.ascontiguousarray(batch)}

    with tempfile.TemporaryDirectory(prefix="digits-int8-") as tmp:
        src, dst = Path(tmp, "float.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(graph)
        # the quantizer logs advice about optional pre-processing through the root logger
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            quantize_static(str(src), str(dst), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=_stem_nodes(graph))
        finally:
            root.setLevel(level)
        return dst.read_bytes()


BACKENDS = ("auto", "int8", "onnx", "torch")


class Recognizer:
    """Finds and reads handwritten digits. Stateless per frame (tracking lives elsewhere)."""

    def __init__(
        self,
        model: torch.nn.Module,
        checkpoint: dict[str, Any],
        *,
        backend: str = "auto",
        threads: int = 1,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        segment_config: SegmentConfig | None = None,
        weights_path: str | None = None,
        pair_model: torch.nn.Module | None = None,
        pair_checkpoint: dict[str, Any] | None = None,
        seq_model: torch.nn.Module | None = None,
        seq_checkpoint: dict[str, Any] | None = None,
    ) -> None:
        norm = checkpoint["normalization"]
        self.mean, self.std = float(norm["mean"]), float(norm["std"])
        self.size, self.box = int(norm["size"]), int(norm["box"])
        self.class_names = list(checkpoint["class_names"])
        self.metrics = dict(checkpoint.get("metrics", {}))
        self.min_confidence = float(min_confidence)
        self.segment_config = segment_config or SegmentConfig()
        self.weights_path = weights_path
        self.threads = max(1, int(threads))
        self.model = model
        self.backend = self._make_backend(model, backend, self.threads, self._calibration(checkpoint))
        self.pair_backend = None
        if pair_model is not None:
            # one thread: a second pool of spinning threads beside the digit network's
            # halved the 2-thread frame rate, and its batches are small. A pair reader
            # without calibration images runs in float32 even where the digits run in int8.
            pair_calib = self._calibration(pair_checkpoint or {})
            pair_kind = "onnx" if backend == "int8" and pair_calib is None else backend
            self.pair_backend = self._make_backend(pair_model, pair_kind, 1, pair_calib,
                                                   shape=(self.size, 2 * self.size))
        self.seq_backend = None
        if seq_model is not None:
            # on one thread, as the pair reader; its convolutions in int8 where the
            # checkpoint has calibration numbers (its LSTM stays float32 either way)
            seq_calib = self._calibration(seq_checkpoint or {})
            seq_kind = "onnx" if backend == "int8" and seq_calib is None else backend
            self.seq_backend = self._make_backend(seq_model, seq_kind, 1, seq_calib,
                                                  shape=(self.size, sequences.WIDTH))
        # the first run of a session allocates and plans, and the normalization kernels
        # compile (or load from the disk cache): keep that out of frame timings
        for n in (1, 32):
            self.predict(np.zeros((n, self.size, self.size), np.float32))
        native.warm_up()

    def _calibration(self, checkpoint: dict[str, Any]) -> np.ndarray | None:
        """A checkpoint's calibration images as normalized network inputs [N, 1, H, W]."""
        calib = checkpoint.get("calibration")
        return None if calib is None else self._net_input(np.asarray(calib, np.float32) / 255.0)

    def _net_input(self, images: np.ndarray) -> np.ndarray:
        """Images in [0, 1] [N, H, W] as a network's input: normalized with the
        checkpoint's constants, float32 [N, 1, H, W], contiguous."""
        return np.ascontiguousarray(((np.asarray(images, np.float32) - self.mean) / self.std)[:, None])

    @staticmethod
    def _make_backend(model: torch.nn.Module, backend: str, threads: int, calibration: np.ndarray | None,
                      shape: tuple[int, int] = (28, 28)) -> Any:
        """``auto``: int8 ONNX Runtime when the checkpoint has calibration images, else
        float ONNX Runtime, else PyTorch eager. The others insist on one."""
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        if backend == "int8" and calibration is None:
            raise CheckpointError("int8 inference needs a checkpoint with calibration images "
                                  "(add them with: python -m training.calibrate CHECKPOINT)")
        if backend in ("auto", "int8") and calibration is not None:
            try:
                return _OnnxBackend(model, threads, calibration, shape=shape)
            except Exception as err:  # noqa: BLE001 - any failure falls back to float
                if backend == "int8":
                    raise
                log.warning("int8 quantization failed (%s); using float32", err)
        if backend in ("auto", "onnx"):
            try:
                return _OnnxBackend(model, threads, shape=shape)
            except Exception as err:  # noqa: BLE001 - any failure falls back to eager
                if backend == "onnx":
                    raise
                log.warning("onnxruntime unavailable (%s); using PyTorch eager", err)
        return _TorchBackend(model, threads)

    @classmethod
    def load(
        cls,
        weights: str | os.PathLike | None = None,
        *,
        backend: str = "auto",
        threads: int = 1,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        segment_config: SegmentConfig | None = None,
        pair_weights: str | os.PathLike | None = None,
        seq_weights: str | os.PathLike | None = None,
    ) -> "Recognizer":
        """Load a checkpoint (default: ``$DIGITS_WEIGHTS`` or ``assets/digits.pt``), the
        pair reader's (``pair_weights``; default: ``$DIGITS_PAIR_WEIGHTS`` or
        ``assets/pairs.pt`` when that file exists; ``""``: none) and the number reader's
        (``seq_weights``; likewise ``$DIGITS_SEQ_WEIGHTS`` or ``assets/sequences.pt``).
        Raises :class:`training.checkpoint.CheckpointError` with a one-line message."""
        path = Path(weights) if weights else default_weights()
        model, ckpt = load_checkpoint(path)
        if tuple(ckpt["class_names"][:10]) != tuple(str(d) for d in range(10)):
            raise CheckpointError(f"{path}: class names {ckpt['class_names']} are not the digits 0-9")
        pair_model, pair_ckpt = None, None
        pair_path = _pair_weights(pair_weights)
        if pair_path is not None:
            pair_model, pair_ckpt = load_checkpoint(pair_path)
            if pair_model.config.arch != "pairnet" or pair_model.config.num_classes not in (
                    pairs.OUTPUTS, pairs.LEGACY_OUTPUTS):
                raise CheckpointError(f"{pair_path}: not a pair reader checkpoint")
        seq_model, seq_ckpt = None, None
        seq_path = _seq_weights(seq_weights)
        if seq_path is not None:
            seq_model, seq_ckpt = load_checkpoint(seq_path)
            if seq_model.config.arch != "seqnet" or seq_model.config.num_classes != sequences.BLANK + 1:
                raise CheckpointError(f"{seq_path}: not a number reader checkpoint")
        return cls(model, ckpt, backend=backend, threads=threads, min_confidence=min_confidence,
                   segment_config=segment_config, weights_path=str(path), pair_model=pair_model,
                   pair_checkpoint=pair_ckpt, seq_model=seq_model,
                   seq_checkpoint=seq_ckpt)

    # ---- stage 4: one batched forward pass ------------------------------------------

    def predict(self, crops28: np.ndarray) -> np.ndarray:
        """Class probabilities [N, classes] for MNIST-style crops [N, 28, 28] in [0, 1]."""
        if len(crops28) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        logits = self.backend(self._net_input(crops28))
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    # ---- frames ---------------------------------------------------------------------

    def candidates(self, frame: np.ndarray, timer: Timer = untimed) -> tuple[np.ndarray, list[Candidate]]:
        """Stages 1-2: ``(ink map, digit-like components)`` of a BGR or gray frame."""
        return segment(frame, self.segment_config, timer)

    def crops(self, ink: np.ndarray, cands: Sequence[Candidate], plain: bool = False) -> np.ndarray:
        """Stage 3: MNIST-style 28x28 crops [N, 28, 28] (``plain``: the stretched baseline)."""
        if not plain:
            return to_mnist_batch(ink, [c.box for c in cands], [c.mask for c in cands], size=self.size, box=self.box)
        out = np.zeros((len(cands), self.size, self.size), np.float32)
        for i, c in enumerate(cands):
            x, y, w, h = c.box
            out[i] = plain_resize(np.where(c.mask, as_float_ink(ink[y : y + h, x : x + w]), 0.0), self.size)
        return out

    def detect(self, frame: np.ndarray, plain: bool = False, min_confidence: float | None = None,
               timer: Timer = untimed) -> list[Detection]:
        """All digits in a frame, in reading order, confidence >= ``min_confidence``
        (default: the recognizer's; a tracker passes 0 to see the evidence it smooths).
        ``timer(stage)``: a context manager around each stage, for profiling."""
        threshold = self.min_confidence if min_confidence is None else float(min_confidence)
        with opencv_single_thread():
            ink, cands = self.candidates(frame, timer)
            if not cands:
                return []
            chosen = self.resolve(ink, cands, plain=plain, timer=timer)
        out = [Detection(box=c.box, digit=int(p.argmax()), confidence=float(p.max()), probs=p)
               for c, p in chosen]
        out = [d for d in out if d.digit < 10 and d.confidence >= threshold]
        return out

    def _sure(self, cand: Candidate, probs: np.ndarray) -> bool:
        """Whether the digit network's reading of a whole blob settles it (SURE_WHOLE)."""
        return cand.box[2] <= self.segment_config.whole_max_aspect * cand.box[3] and probs[:10].max() >= SURE_WHOLE

    def hypotheses(self, cands: Sequence[Candidate]) -> tuple[list[Candidate], Lattices, Merges]:
        """Every crop worth classifying: the candidates themselves, the union of every pair
        of candidates that may be pieces of one broken digit, and the stretches of each
        wide candidate's cut lattice (:meth:`detect` classifies the lattices only of the
        candidates it is unsure of). Returns ``(crops, lattices, merges)``: ``lattices``
        maps a candidate's index to ``(number of cut points, [(i, j, index into
        crops)])``; ``merges`` lists ``(a, b, index into crops)``."""
        crops, merges = self._merges(cands)
        return crops, self._lattices(cands, None, crops), merges

    @staticmethod
    def _merges(cands: Sequence[Candidate]) -> tuple[list[Candidate], Merges]:
        """The candidates, then the union of every pair that may be pieces of one broken
        digit: ``(crops, [(a, b, index into crops)])``."""
        crops: list[Candidate] = list(cands)
        merges: Merges = []
        for a, b in piece_pairs([c.box for c in cands]):
            merges.append((a, b, len(crops)))
            crops.append(merge_pieces(cands[a], cands[b]))
        return crops, merges

    def _lattices(self, cands: Sequence[Candidate], probs: np.ndarray | None, crops: list[Candidate]) -> Lattices:
        """The cut lattices of the wide candidates, their parts appended to ``crops``.
        ``probs``: the digit network's reading of the candidates (their first
        ``len(cands)`` rows); given, a candidate it is sure of (:meth:`_sure`) gets none."""
        cfg = self.segment_config
        lattices: Lattices = {}
        for n, c in enumerate(cands):
            w, h = c.box[2], c.box[3]
            if w / h >= cfg.split_min_aspect and (probs is None or not self._sure(c, probs[n])):
                # several cut points even for a blob barely wider than a digit: in a pair
                # of overlapping digits the single deepest valley is often the wrong cut
                n_points, segs = cut_lattice(c, cfg, max_cuts=_max_cuts(w, h))
                lattices[n] = (n_points, [(i, j, len(crops) + k) for k, (i, j, _) in enumerate(segs)])
                crops.extend(part for _, _, part in segs)
        return lattices

    def pair_hypotheses(self, cands: Sequence[Candidate], probs: np.ndarray | None = None) -> PairHyps:
        """The stretches the pair reader reads as two touching digits: every candidate
        from PAIR_MIN_ASPECT wide, whole, and every stretch of its cut lattice (the same
        cut points as :meth:`hypotheses`) from PAIR_MIN_ASPECT to PAIR_MAX_ASPECT blob
        heights wide. ``probs``: the digit network's reading of each candidate (its first
        ``len(cands)`` rows); given, a candidate it is sure of (:meth:`_sure`) is left
        alone. ``[]`` without a pair reader."""
        if self.pair_backend is None:
            return []
        cfg = self.segment_config
        out: PairHyps = []
        for n, c in enumerate(cands):
            x, y, w, h = c.box
            if w / h < PAIR_MIN_ASPECT or (probs is not None and self._sure(c, probs[n])):
                continue
            points = lattice_points(c, _max_cuts(w, h)) if w / h >= cfg.split_min_aspect else [0, w]
            parts = lattice_stretches(c, points, PAIR_MIN_ASPECT * h, PAIR_MAX_ASPECT * h, cfg.part_min_height)
            hyps = [(n, i, j, part) for i, j, part in parts]
            if w <= PAIR_MAX_ASPECT * h:
                # the whole blob, in the lattice's order: after the stretches from its left side
                first = sum(1 for i, _, _ in parts if i == 0)
                hyps.insert(first, (n, 0, len(points) - 1, c))
            out.extend(hyps)
        return out

    def read_pairs(self, ink: np.ndarray, parts: Sequence[Candidate]) -> tuple[np.ndarray, ...]:
        """The pair reader on stretches of one ink map: ``(left probs [N, 10], right probs
        [N, 10], pair probability [N], ends [N, 2], digits probability [N])`` (see
        :func:`realtime.pairs.decode`)."""
        if self.pair_backend is None or not parts:
            return np.zeros((0, 10)), np.zeros((0, 10)), np.zeros(0), np.zeros((0, 2)), np.zeros(0)
        fields = pairs.pair_fields(ink, [p.box for p in parts], [p.mask for p in parts])
        return pairs.decode(self.pair_backend(self._net_input(fields)))

    def resolve(self, ink: np.ndarray, cands: Sequence[Candidate], plain: bool = False, timer: Timer = untimed,
                ) -> list[tuple[Candidate, np.ndarray]]:
        """Stages 4-5: classify every candidate and every way of joining two into one
        broken digit in one batch; then, for the wide candidates that reading leaves
        unsure, every way of splitting them into touching digits in a second batch (and
        the stretches that may be two touching digits in one batch of the pair reader);
        keep the readings the classifier is most confident about, where they are close
        weighing in the number reader's view of the whole blob (one batch). Returns
        ``(candidate, probabilities)``."""
        with timer("cut lattices"):
            crops, merges = self._merges(cands)
        with timer("normalization"):
            batch = self.crops(ink, crops, plain=plain)
        with timer("network"):
            probs = self.predict(batch)
        with timer("cut lattices"):
            first = len(crops)
            lattices = self._lattices(cands, probs, crops)
        if len(crops) > first:
            with timer("normalization"):
                batch = self.crops(ink, crops[first:], plain=plain)
            with timer("network"):
                probs = np.concatenate([probs, self.predict(batch)])
        with timer("pair reader"):
            pair_hyps = [] if plain else self.pair_hypotheses(cands, probs)
            parts = [p for _, _, _, p in pair_hyps]
            # each blob the pair reader sees is also read whole, for its "digits" answer
            whole = {n: h for h, (n, _, _, p) in enumerate(pair_hyps) if p is cands[n]}
            for n in dict.fromkeys(n for n, _, _, _ in pair_hyps):
                if n not in whole:
                    whole[n] = len(parts)
                    parts.append(cands[n])
            read = self.read_pairs(ink, parts)
            unsplit = {n for n, h in whole.items() if read[4][h] < DIGITS_GATE}
            dropped = {n for n, h in whole.items() if read[4][h] < DIGITS_DROP}
        with timer("split choices"):
            options = self._split_options(cands, crops, lattices, probs, pair_hyps, read, unsplit,
                                          by_reading=not plain and self.seq_backend is not None)
        with timer("number reader"):
            asked = self._contested(options)
            numbers = dict(zip(asked, self.read_numbers(ink, [cands[n] for n in asked])))
        with timer("split choices"):
            return self._choose(cands, crops, merges, probs, options, pair_hyps, read, dropped, numbers)

    def read_numbers(self, ink: np.ndarray, blobs: Sequence[Candidate]) -> list[np.ndarray]:
        """The number reader on blobs of one ink map: per blob, logits [T, 11] per column
        (see :mod:`realtime.sequences`); ``[]`` without a number reader."""
        if self.seq_backend is None or not blobs:
            return []
        fields = sequences.sequence_fields(ink, [b.box for b in blobs], [b.mask for b in blobs])
        return list(self.seq_backend(self._net_input(fields)))

    def _pair_digits(self, part: Candidate, left: np.ndarray, right: np.ndarray, pair_p: float,
                     ends: np.ndarray) -> list[tuple[Candidate, np.ndarray]]:
        """A stretch read as two digits: each digit's box from the reader's split ends,
        its probabilities (the "not a digit" class, if any, at 0) scaled by ``pair_p``."""
        x, y, w, h = part.box
        e = int(np.clip(round(float(ends[0]) * w), 1, w))
        s = int(np.clip(round(float(ends[1]) * w), 0, w - 1))
        out = []
        for (a, b), p in (((0, e), left), ((s, w), right)):
            m = part.mask[:, a:b]
            rows = np.flatnonzero(m.any(axis=1))
            y0, y1 = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, h)
            probs = np.zeros(len(self.class_names), np.float32)
            probs[:10] = p * pair_p
            out.append((Candidate(box=(x + a, y + y0, b - a, y1 - y0), mask=m[y0:y1]), probs))
        return out

    def _split_options(self, cands: Sequence[Candidate], crops: Sequence[Candidate], lattices: Lattices,
                       probs: np.ndarray, pair_hyps: PairHyps = (), read: tuple[np.ndarray, ...] = (),
                       unsplit: set[int] = frozenset(), by_reading: bool = False) -> Options:
        """How each candidate may be read: ``{candidate: (whole, splits)}``. ``whole``: the
        digit it reads as whole and that reading's score (``None`` when too wide to be one
        digit); ``splits``: the
        best chains of its lattice's parts (some read as pairs of touching digits) as
        ``(spelled digits, parts, score)``, each part ``(False, crop index)`` or ``(True,
        pair hypothesis index)``. With ``by_reading`` the best chain for
        each digit string the chains spell of the blobs from SEQ_MIN_ASPECT wide (for the
        number reader to choose among), else the best chain only, spelled ``None``.
        ``unsplit``: candidates that look like no digits (letters, a word): read whole
        only, never split."""
        cfg = self.segment_config
        conf = _confidences(probs)
        by_cand: dict[int, list[int]] = {}
        if pair_hyps:
            left, right, pair_p = read[:3]
            pair_conf = np.maximum(pair_p * left.max(axis=1) * right.max(axis=1), 1e-12)
            for h, (n, _, _, _) in enumerate(pair_hyps):
                by_cand.setdefault(n, []).append(h)
        out: Options = {}
        for n, c in enumerate(cands):
            # a blob too wide for one digit may only be read as several
            whole = ((str(int(probs[n][:10].argmax())), float(np.log(conf[n])) + SPLIT_BONUS)
                     if c.box[2] / c.box[3] <= cfg.whole_max_aspect else None)
            splits: list[Split] = []
            if (n in lattices or n in by_cand) and n not in unsplit:
                n_points, segs = lattices.get(n, (2, []))
                edges = [(i, j, float(conf[k])) for i, j, k in segs]
                hyps = by_cand.get(n, [])
                edges += [(pair_hyps[h][1], pair_hyps[h][2], float(pair_conf[h]), 2) for h in hyps]
                if by_reading and c.box[2] >= SEQ_MIN_ASPECT * c.box[3]:
                    spelled = [str(int(probs[k][:10].argmax())) for _, _, k in segs]
                    spelled += [f"{int(left[h].argmax())}{int(right[h].argmax())}" for h in hyps]
                    found = chains_by_reading(n_points, edges, spelled, min_conf=SPLIT_MIN_CONF, bonus=SPLIT_BONUS)
                    chains = [(text, path, sc) for text, (path, sc) in found.items()]
                else:
                    chains = [(None, *best_chain(n_points, edges, min_conf=SPLIT_MIN_CONF, bonus=SPLIT_BONUS))]
                # a chain's edges as parts: (False, crop index) or (True, pair hypothesis)
                splits = [(text, [(False, segs[e][2]) if e < len(segs) else (True, hyps[e - len(segs)]) for e in path],
                           sc) for text, path, sc in chains if path]
            out[n] = (whole, splits)
        return out

    @staticmethod
    def _contested(options: Options) -> list[int]:
        """The candidates whose reading the number reader may change: split by reading
        (:meth:`_split_options`), with a second reading (whole, or a chain spelling other
        digits) within SEQ_CONTEST of the best one's score."""
        out = []
        for n, (whole, splits) in options.items():
            if not splits or splits[0][0] is None:
                continue
            scores = sorted([sc for _, _, sc in splits] + ([whole[1]] if whole else []))
            if len(scores) >= 2 and scores[-1] - scores[-2] < SEQ_CONTEST:
                out.append(n)
        return out

    def _choose(self, cands: Sequence[Candidate], crops: Sequence[Candidate], merges: Merges, probs: np.ndarray,
                options: Options, pair_hyps: PairHyps = (), read: tuple[np.ndarray, ...] = (),
                dropped: set[int] = frozenset(), numbers: dict[int, np.ndarray] | None = None,
                ) -> list[tuple[Candidate, np.ndarray]]:
        """Per candidate, its whole reading or its best split (:meth:`_split_options`);
        then two candidates are read as one digit where that reading scores higher than
        their own readings together. ``numbers``: the number reader's logits of some
        candidates; there each reading's score (whole, or each digit string a split
        spells) gains SEQ_WEIGHT times the log-likelihood the number reader gives that
        string. ``dropped``: candidates surely no digits, left out unless joined with
        another."""
        conf = _confidences(probs)
        numbers = numbers or {}
        plans: list[list[tuple[Candidate, np.ndarray]] | None] = []
        scores: list[float] = []
        for n, c in enumerate(cands):
            whole, splits = options[n]
            best = [(c, probs[n])] if whole is not None else None
            score = whole[1] if whole is not None else float("-inf")
            if n in numbers:
                like = sequences.reading_scores(numbers[n], {t for t, _, _ in splits} | ({whole[0]} if whole else set()))
                if whole is not None:
                    score += SEQ_WEIGHT * like[whole[0]]
                splits = [(t, p, sc + SEQ_WEIGHT * like[t]) for t, p, sc in splits]
            if splits:
                _, parts, chain = max(splits, key=lambda s: s[2])
                # splitting must clearly beat reading the blob whole
                if best is None or chain > score + np.log1p(SPLIT_MARGIN):
                    best, score = [], chain
                    for is_pair, k in parts:
                        if is_pair:
                            left, right, pair_p, ends = read[:4]
                            best.extend(self._pair_digits(pair_hyps[k][3], left[k], right[k], float(pair_p[k]),
                                                          ends[k]))
                        else:
                            best.append((crops[k], probs[k]))
            plans.append(best)
            scores.append(score)
        joined: dict[int, int] = {}
        gains = [(float(np.log(conf[k])) + SPLIT_BONUS - scores[a] - scores[b], a, b, k) for a, b, k in merges]
        for gain, a, b, k in sorted(gains, reverse=True):
            # the pieces must be read as one digit at least MERGE_MIN_CONF, and better
            # than as what they are on their own
            if gain <= 0:
                break
            if conf[k] < MERGE_MIN_CONF or probs[k].argmax() == 10:
                continue
            if a in joined or b in joined:
                continue
            joined[a], joined[b] = k, -1
        chosen: list[tuple[Candidate, np.ndarray]] = []
        for n, best in enumerate(plans):
            if n in joined:
                if joined[n] >= 0:
                    chosen.append((crops[joined[n]], probs[joined[n]]))
            elif best is not None and n not in dropped:
                chosen.extend(best)
        return chosen

    # ---- single-digit crops -----------------------------------------------------------

    def classify(self, crops: Sequence[np.ndarray], plain: bool = False) -> list[tuple[int, float]]:
        """Read single-digit images as a camera sees them (any size, BGR or gray, dark ink
        on light paper). Returns ``(digit, confidence)`` per crop (``(-1, 0.0)`` if no ink)."""
        batch = np.zeros((len(crops), self.size, self.size), np.float32)
        has_ink = np.zeros(len(crops), bool)
        for i, crop in enumerate(crops):
            ink, mask = digit_ink(crop, self.segment_config)
            if mask is None:
                continue
            has_ink[i] = True
            batch[i] = plain_resize(np.where(mask, as_float_ink(ink), 0.0), self.size) if plain else to_mnist(
                ink, mask, size=self.size, box=self.box)
        probs = self.predict(batch)
        res = []
        for ok, p in zip(has_ink, probs):
            # the caller says this is a digit: answer with the likeliest one (a "not a
            # digit" class, when the model has one, only lowers that confidence)
            d = int(p[:10].argmax())
            res.append((d, float(p[d])) if ok else (-1, 0.0))
        return res


def digit_ink(crop: np.ndarray, cfg: SegmentConfig = SegmentConfig(), work_px: int = 200) -> tuple[np.ndarray, np.ndarray | None]:
    """The ink map (uint8) and the digit's mask in a single-digit crop (``None`` mask: no ink).

    The crop is scaled so its longer side is ``work_px`` (segmentation constants assume
    digits of tens of pixels). Thin strokes often binarize into several pieces, so pieces
    are grouped by proximity (a dilated copy of the mask); groups that are long thin
    edges touching the crop border (paper edge, shadow line) are dropped; the largest
    group is the digit, with any group at least a quarter its size (a detached bar).
    The returned ink map and mask are cropped to the digit's box.
    """
    gray = ink_gray(np.asarray(crop))
    if gray.dtype != np.uint8:
        gray = np.clip(gray, 0, 255).astype(np.uint8)
    h, w = gray.shape[:2]
    s = work_px / max(h, w)
    gray = cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    # pad with paper so a digit touching the crop edge still gets a background estimate
    pad = 8
    gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    # in a single-digit crop the digit's own strokes span much of the image: only a line
    # crossing nearly the whole crop is a ruled line
    cfg = dataclasses.replace(cfg, line_frac=0.9)
    ink = ink_map(gray, cfg)
    weak, strong = ink_thresholds(ink, cfg)
    mask = binarize(ink, cfg, (weak, strong))
    if not mask.any():
        return ink, None
    H, W = mask.shape
    k = max(3, int(0.05 * work_px)) | 1
    grouped = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grouped, connectivity=8)
    area = np.bincount(labels[mask > 0], minlength=n).astype(np.float64)
    area[0] = 0
    x, y, bw, bh = (stats[:, i] for i in range(4))
    m = 2 * pad
    touches = (x <= m) | (y <= m) | (x + bw >= W - m) | (y + bh >= H - m)
    elongated = np.maximum(bw, bh) > 5 * np.maximum(np.minimum(bw, bh), 1)
    huge = (bw > 0.9 * W) | (bh > 0.9 * H)
    score = area.copy()
    score[touches & (elongated | huge)] = 0  # paper edges, shadow borders, desk
    if score.max() <= 0:
        score = area
    main = int(score.argmax())
    keep = score >= 0.25 * score[main]
    keep[0] = False
    # hysteresis: a group must be properly dark somewhere (paper texture is not)
    peak = np.zeros(n, np.float32)
    np.maximum.at(peak, labels[mask > 0], ink[mask > 0])
    keep &= peak >= 255 * strong
    if not keep.any():
        return ink, None
    digit = keep[labels] & (mask > 0)
    ys, xs = np.nonzero(digit)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return ink[y0:y1, x0:x1], digit[y0:y1, x0:x1]
