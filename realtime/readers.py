"""The three readers and their inference backends: crops in, readings (small dataclasses) out.

- the digit reader reads one digit per 28x28 MNIST-style field (``training.fields``)
  and answers class probabilities, the "not a digit" class (when the checkpoint has
  one) after the ten digits;
- the pair reader reads a stretch of touching digits as two digits whole: both digits,
  whether it is a pair at all, where each digit ends, and whether it is handwritten
  digits at all (``training.fields.PAIR_OUTPUTS``);
- the number reader reads a whole blob left to right with CTC and scores the digit
  strings the other readers' chains spell (it never places a digit).

Each runs its checkpoint's network through ONNX Runtime, exported in memory (2-4x faster
than PyTorch eager for nets this small on a CPU), in int8 where the checkpoint carries
calibration inputs (another ~2.6x; ``backend="onnx"`` keeps float32), or PyTorch eager
(``backend="torch"``). The digit reader uses the ``threads`` asked for; the pair and
number readers one each: a second pool of spinning threads beside the digit reader's
halved the 2-thread frame rate, and their batches are small.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from training import fields
from training.errors import CheckpointError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "int8", "onnx", "torch")


# ---- readings ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DigitReadings:
    """The digit reader's answer for N crops: class probabilities [N, classes]; the first
    ``digits`` classes are 0-9 (the checkpoint's class names), the rest "not a digit".
    ``confidence``: each crop's best digit probability, floored (a probability that
    underflowed to 0 must still have a logarithm)."""

    probs: np.ndarray
    digits: int = 10
    confidence: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "confidence", np.maximum(self.probs[:, : self.digits].max(axis=1), 1e-12))

    @property
    def classes(self) -> int:
        return int(self.probs.shape[1])

    def digit(self, k: int) -> int:
        """Crop ``k``'s likeliest digit."""
        return int(self.probs[k, : self.digits].argmax())

    def is_digit(self, k: int) -> bool:
        """Whether crop ``k``'s likeliest class is a digit, not "not a digit"."""
        return int(self.probs[k].argmax()) < self.digits

    def __len__(self) -> int:
        return len(self.probs)

    def extend(self, more: DigitReadings) -> DigitReadings:
        """These readings followed by ``more``'s."""
        return DigitReadings(np.concatenate([self.probs, more.probs]), self.digits)


@dataclass(frozen=True)
class PairReadings:
    """The pair reader's answer for N stretches: each digit's probabilities [N, 10], the
    pair probability [N], each digit's end as a share of the width [N, 2] (the left
    digit's right end, the right digit's left end) and the "digits at all" probability [N]."""

    left: np.ndarray
    right: np.ndarray
    pair: np.ndarray
    ends: np.ndarray
    digits: np.ndarray

    @classmethod
    def empty(cls) -> PairReadings:
        return cls(np.zeros((0, 10)), np.zeros((0, 10)), np.zeros(0), np.zeros((0, 2)), np.zeros(0))

    @classmethod
    def from_logits(cls, logits: np.ndarray) -> PairReadings:
        """Decode the pair net's logits [N, outputs] (``training.fields.PAIR_OUTPUTS``)."""
        out = fields.PAIR_OUTPUTS
        z = np.asarray(logits, np.float64)

        def softmax(v: np.ndarray) -> np.ndarray:
            e = np.exp(v - v.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        sig = 1.0 / (1.0 + np.exp(-z[:, out.pair :]))
        at = lambda i: i - out.pair  # noqa: E731 - an output's column among the sigmoid ones
        digits = sig[:, at(out.digits)] if z.shape[1] > out.digits else np.ones(len(z))
        return cls(softmax(z[:, out.left]), softmax(z[:, out.right]), sig[:, at(out.pair)],
                   sig[:, at(out.ends.start) : at(out.ends.stop)], digits)

    @property
    def confidence(self) -> np.ndarray:
        """Each stretch's confidence as two digits: the pair's times both digits', floored."""
        return np.maximum(self.pair * self.left.max(axis=1) * self.right.max(axis=1), 1e-12)

    def spell(self, k: int) -> str:
        """Stretch ``k``'s two likeliest digits."""
        return f"{int(self.left[k].argmax())}{int(self.right[k].argmax())}"


# ---- backends ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Network:
    """What a reader needs of one network: its normalization and classes, its ready
    ONNX graphs (``graphs``: precision -> bytes, with each one's session settings), and
    the checkpoint to rebuild it from with PyTorch when a graph is missing or asked for
    (``checkpoint``; loaded only then)."""

    path: str
    kind: str
    mean: float
    std: float
    size: int
    box: int
    class_names: tuple[str, ...]
    shape: tuple[int, int]
    metrics: dict[str, Any]
    graphs: dict[str, bytes] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkpoint: Path | None = None
    _loaded: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def inputs(self, images: np.ndarray) -> np.ndarray:
        """Images in [0, 1] [N, H, W] as the network's input: normalized with the
        network's constants, float32 [N, 1, H, W], contiguous."""
        return np.ascontiguousarray(((np.asarray(images, np.float32) - self.mean) / self.std)[:, None])

    def _checkpoint(self) -> tuple[Any, dict[str, Any]]:
        if "model" not in self._loaded:
            if self.checkpoint is None:
                raise CheckpointError(f"{self.path}: no checkpoint beside the graph to rebuild it from (a torch "
                                      "backend needs one)")
            try:
                from training.checkpoint import load_checkpoint
            except ImportError as err:
                raise CheckpointError(f"{self.checkpoint}: has no ready graphs, and rebuilding them needs PyTorch "
                                      f"({err}); install the train extra, or write the graphs with: "
                                      f"python -m training export {self.checkpoint}") from err
            model, ckpt = load_checkpoint(self.checkpoint)
            self._loaded["model"], self._loaded["ckpt"] = model, ckpt
        return self._loaded["model"], self._loaded["ckpt"]

    @property
    def model(self) -> Any:
        """The network as a PyTorch module (float32), rebuilt from the checkpoint."""
        return self._checkpoint()[0]

    @property
    def calibration(self) -> np.ndarray | None:
        """The checkpoint's calibration inputs, normalized [N, 1, H, W] (``None``: none)."""
        calib = self._checkpoint()[1].get("calibration")
        return None if calib is None else self.inputs(np.asarray(calib, np.float32) / 255.0)

    def graph(self, precision: str) -> tuple[bytes, dict[str, Any]] | None:
        """The graph of ``precision`` (``float32``/``int8``) and its session settings:
        the ready one, else rebuilt from the checkpoint (int8 only where it carries
        calibration inputs), else ``None``."""
        if precision in self.graphs:
            return self.graphs[precision], self.sessions.get(precision, {})
        if self.checkpoint is None:
            return None
        from training.export import INT8_SESSION, onnx_graph, quantize_int8

        log.info("%s: no ready %s graph beside it; building one (python -m training export writes them)",
                 self.checkpoint, precision)
        graph = onnx_graph(self.model, self.shape)
        if precision == "float32":
            return graph, {}
        calibration = self.calibration
        return (quantize_int8(graph, calibration), INT8_SESSION) if calibration is not None else None


_WIDTHS = {"digits": fields.SIZE, "pairs": fields.PAIR_WIDTH, "numbers": fields.NUMBER_WIDTH}


def _check_kind(path: Path, kind: str, names: tuple[str, ...], n_outputs: int) -> None:
    if kind == "digits" and names[:10] != tuple(str(d) for d in range(10)):
        raise CheckpointError(f"{path}: not a digit reader checkpoint (class names {list(names)[:12]})")
    if kind == "pairs" and n_outputs not in (fields.PAIR_OUTPUTS.size, fields.PAIR_OUTPUTS.legacy_size):
        raise CheckpointError(f"{path}: not a pair reader checkpoint")
    if kind == "numbers" and n_outputs != fields.NUMBER_BLANK + 1:
        raise CheckpointError(f"{path}: not a number reader checkpoint")


def _ready_graphs(path: Path, kind: str) -> tuple[dict[str, bytes], dict[str, dict[str, Any]], dict[str, Any]] | None:
    """The graphs training wrote for ``path`` (a checkpoint, or one of its graphs), read
    and validated (``training.graph``): ``(bytes by precision, sessions, metadata)``, or
    ``None`` when there are none, or they were made from another checkpoint than the one
    beside them (a retrained ``digits.pt`` whose graphs are stale)."""
    import hashlib

    from training.export import graph_paths
    from training.graph import read_graph

    stem = path.with_name(path.name.removesuffix(".int8.onnx").removesuffix(".onnx").removesuffix(".pt") + ".pt")
    candidates = [p for p in graph_paths(stem) if p.is_file()]
    if path.suffix == ".onnx" and path not in candidates:
        candidates.append(path)
    if not candidates:
        return None
    graphs, sessions, meta = {}, {}, {}
    for p in candidates:
        data, m = read_graph(p, kind)
        graphs[m["precision"]], sessions[m["precision"]], meta = data, dict(m.get("session") or {}), m
    if stem.is_file() and path.suffix != ".onnx":
        if hashlib.sha256(stem.read_bytes()).hexdigest() != meta.get("source_sha256"):
            log.warning("%s: its graphs were made from another checkpoint; rebuilding them from this one", stem)
            return None
    return graphs, sessions, meta


def load_network(path: str | Path, kind: str) -> Network:
    """The network of ``kind`` (``digits``, ``pairs`` or ``numbers``) at ``path``: a
    checkpoint, whose ready graphs beside it are used when they were made from it (no
    PyTorch needed), or one of those graphs itself. Raises :class:`CheckpointError` with
    a one-line message (a damaged graph, one of another kind, a missing file)."""
    path = Path(path)
    ready = _ready_graphs(path, kind)
    if ready is not None:
        graphs, sessions, meta = ready
        norm, names = meta["normalization"], tuple(str(n) for n in meta["class_names"])
        _check_kind(path, kind, names, len(names))
        checkpoint = path.with_name(path.name.removesuffix(".int8.onnx").removesuffix(".onnx").removesuffix(".pt")
                                    + ".pt")
        return Network(str(path), kind, float(norm["mean"]), float(norm["std"]), int(norm["size"]), int(norm["box"]),
                       names, tuple(meta["input_shape"]), dict(meta.get("metrics") or {}), graphs, sessions,
                       checkpoint if checkpoint.is_file() else None)
    if path.suffix == ".onnx":
        raise CheckpointError(f"{path}: graph not found")
    from training.checkpoint import load_checkpoint

    model, ckpt = load_checkpoint(path)
    names = tuple(str(n) for n in ckpt["class_names"])
    arch, reader = {"digits": ("digitnet", "digit"), "pairs": ("pairnet", "pair"), "numbers": ("seqnet", "number")}[kind]
    if model.config.arch != arch:
        raise CheckpointError(f"{path}: not a {reader} reader checkpoint")
    _check_kind(path, kind, names, model.config.num_classes)
    norm = ckpt["normalization"]
    size = int(norm["size"])
    net = Network(str(path), kind, float(norm["mean"]), float(norm["std"]), size, int(norm["box"]), names,
                  (size, size if kind == "digits" else _WIDTHS[kind]), dict(ckpt.get("metrics", {})),
                  checkpoint=path)
    net._loaded.update(model=model, ckpt=ckpt)
    return net


class _TorchBackend:
    name = "torch"

    def __init__(self, model: Any, threads: int) -> None:
        self.model = model.eval()
        self.threads = threads

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        torch.set_num_threads(self.threads)
        with torch.inference_mode():
            return self.model(torch.from_numpy(x)).numpy()


class _OnnxBackend:
    def __init__(self, graph: bytes, session: dict[str, Any], threads: int, name: str) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.name = name
        self.session = ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"],
                                            disabled_optimizers=list(session.get("disabled_optimizers", [])) or None)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"x": x})[0]


Backend = Callable[[np.ndarray], np.ndarray]


def make_backend(net: Network, backend: str = "auto", threads: int = 1) -> Any:
    """``auto``: int8 ONNX Runtime where an int8 graph is ready or can be built (the
    checkpoint carries calibration inputs), else float ONNX Runtime, else PyTorch eager.
    The others insist on one."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "torch":
        return _TorchBackend(net.model, threads)
    if backend in ("auto", "int8"):
        try:
            int8 = net.graph("int8")
            if int8 is not None:
                return _OnnxBackend(*int8, threads, "onnxruntime int8")
        except CheckpointError:
            raise
        except Exception as err:  # noqa: BLE001 - any failure falls back to float
            if backend == "int8":
                raise
            log.warning("int8 graph failed (%s); using float32", err)
        if backend == "int8":
            raise CheckpointError(f"{net.path}: int8 inference needs a checkpoint with calibration inputs "
                                  "(add them with: python -m training.calibrate CHECKPOINT)")
    try:
        graph = net.graph("float32")
        if graph is not None:
            return _OnnxBackend(*graph, threads, "onnxruntime")
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure falls back to eager
        if backend == "onnx":
            raise
        log.warning("onnxruntime unavailable (%s); using PyTorch eager", err)
    return _TorchBackend(net.model, threads)


# ---- the readers -------------------------------------------------------------------------

class DigitReader:
    """One digit per crop: MNIST-style fields, one batch through the network."""

    def __init__(self, net: Network, backend: str = "auto", threads: int = 1) -> None:
        self.net = net
        self.backend = make_backend(net, backend, threads)
        # the leading class names that are the digits 0-9 (load_network checks there are ten)
        self.digits = next((d for d, name in enumerate(net.class_names[:10]) if name != str(d)),
                           min(10, len(net.class_names)))
        # the first run of a session allocates and plans: keep that out of frame timings
        for n in (1, 32):
            self.read_fields(np.zeros((n, net.size, net.size), np.float32))

    def fields(self, ink: np.ndarray, crops: Sequence[Any], plain: bool = False) -> np.ndarray:
        """MNIST-style fields [N, size, size] of crops (``box``, ``mask``) of one ink map
        (``plain``: the stretched baseline, for comparison)."""
        size = self.net.size
        if not plain:
            return fields.to_mnist_crops([c.ink(ink) for c in crops], size=size, box=self.net.box)
        out = np.zeros((len(crops), size, size), np.float32)
        for i, c in enumerate(crops):
            out[i] = fields.plain_resize(c.ink(ink), size)
        return out

    def read_fields(self, images: np.ndarray) -> DigitReadings:
        """Class probabilities of fields [N, size, size] in [0, 1]."""
        if len(images) == 0:
            return DigitReadings(np.zeros((0, len(self.net.class_names)), np.float32), self.digits)
        logits = self.backend(self.net.inputs(images))
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return DigitReadings(e / e.sum(axis=1, keepdims=True), self.digits)

    def read(self, ink: np.ndarray, crops: Sequence[Any], plain: bool = False) -> DigitReadings:
        """The readings of crops of one ink map."""
        return self.read_fields(self.fields(ink, crops, plain))


class PairReader:
    """Two touching digits per stretch, read whole."""

    def __init__(self, net: Network, backend: str = "auto") -> None:
        self.net = net
        # a pair reader without calibration inputs runs in float32 where the digits run in int8
        self.backend = make_backend(net, "onnx" if backend == "int8" and not _has_int8(net) else backend, 1)

    def read(self, ink: np.ndarray, crops: Sequence[Any]) -> PairReadings:
        if not crops:
            return PairReadings.empty()
        images = fields.wide_fields_of([c.ink(ink) for c in crops], fields.PAIR_WIDTH)
        return PairReadings.from_logits(self.backend(self.net.inputs(images)))


def _has_int8(net: Network) -> bool:
    """Whether an int8 graph of the network is ready or can be built."""
    return "int8" in net.graphs or (net.checkpoint is not None and net.calibration is not None)


class NumberReader:
    """A whole blob read left to right: per blob, logits [T, 11] per column of its field
    (the ten digits, then CTC's blank)."""

    def __init__(self, net: Network, backend: str = "auto") -> None:
        self.net = net
        self.backend = make_backend(net, "onnx" if backend == "int8" and not _has_int8(net) else backend, 1)

    def read(self, ink: np.ndarray, blobs: Sequence[Any]) -> list[np.ndarray]:
        if not blobs:
            return []
        images = fields.wide_fields_of([b.ink(ink) for b in blobs], fields.NUMBER_WIDTH)
        return list(self.backend(self.net.inputs(images)))


# ---- CTC -------------------------------------------------------------------------------

BLANK = fields.NUMBER_BLANK


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def ctc_labels(readings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Readings as CTC's inputs: ``(labels int64 [R, L] padded with BLANK, lengths [R])``."""
    lengths = np.array([len(r) for r in readings], np.int64)
    labels = np.full((len(readings), max(1, int(lengths.max(initial=0)))), BLANK, np.int64)
    for i, r in enumerate(readings):
        labels[i, : len(r)] = [int(ch) for ch in r]
    return labels, lengths


def _logaddexp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    m = np.maximum(a, b)
    with np.errstate(invalid="ignore"):
        return np.where(m == -np.inf, -np.inf, m + np.log1p(np.exp(-np.abs(a - b))))


def ctc_log_likelihoods(log_probs: np.ndarray, readings: Sequence[str]) -> np.ndarray:
    """log P(reading | columns) under CTC for several readings at once: ``log_probs``
    float64 [T, 11] per column (digits, then the blank). ``-inf`` for a reading that
    cannot fit in T columns (a repeated digit needs a blank between its two)."""
    if not readings:
        return np.zeros(0)
    labels, lengths = ctc_labels(readings)
    log_probs = np.asarray(log_probs, np.float64)
    r, n = labels.shape
    s = 2 * n + 1
    ext = np.full((r, s), BLANK, np.int64)
    ext[:, 1::2] = labels
    # a label may be skipped to from two states back unless it repeats the label there
    skip = np.zeros((r, s), bool)
    skip[:, 2:] = (ext[:, 2:] != BLANK) & (ext[:, 2:] != ext[:, :-2])
    rows = np.arange(r)
    alpha = np.full((r, s), -np.inf)
    alpha[:, 0] = log_probs[0, BLANK]
    alpha[:, 1] = log_probs[0, ext[:, 1]]
    for t in range(1, len(log_probs)):
        prev1 = np.full((r, s), -np.inf)
        prev1[:, 1:] = alpha[:, :-1]
        prev2 = np.full((r, s), -np.inf)
        prev2[:, 2:] = np.where(skip[:, 2:], alpha[:, :-2], -np.inf)
        alpha = _logaddexp(_logaddexp(alpha, prev1), prev2) + log_probs[t][ext]
    last = alpha[rows, 2 * lengths]
    before = np.where(lengths > 0, alpha[rows, np.maximum(2 * lengths - 1, 0)], -np.inf)
    return _logaddexp(last, before)


def reading_scores(logits: np.ndarray, readings: Sequence[str] | set[str]) -> dict[str, float]:
    """The CTC log-likelihood of each of ``readings`` (digit strings), from one blob's
    number-reader logits [T, 11]."""
    readings = list(readings)
    return dict(zip(readings, ctc_log_likelihoods(log_softmax(logits), readings).tolist()))
