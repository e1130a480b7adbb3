"""A network as a ready-to-run ONNX graph: float32, or int8 from the checkpoint's calibration inputs.

ONNX Runtime runs these small networks 2-4x faster than PyTorch eager on a CPU, and
int8 (static, per-channel weights, activation ranges from calibration inputs the
checkpoint carries) another ~2.6x on CPUs with int8 dot products, for at most 0.01
points of MNIST accuracy. The graphs' input is ``x`` [n, 1, H, W] (normalized with the
checkpoint's constants), their output ``logits``.

:func:`export_graphs` writes a checkpoint's graphs beside it (``<stem>.onnx``,
``<stem>.int8.onnx``) with everything the live view needs to run them in their
metadata (:mod:`training.graph` reads them back without PyTorch); every trainer calls
it on its ``model.pt``, and ``python -m training export CKPT...`` on existing ones.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from training.atomic import write_atomic
from training.graph import GRAPH_FORMAT, GRAPH_FORMAT_VERSION, read_graph, weights_digest

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# ONNX Runtime settings an int8 graph runs with: the QDQ propagation would move the
# stem's quantization before its max pool, which ONNX Runtime then runs on uint8 NCHW
# in a slow generic kernel
INT8_SESSION = {"disabled_optimizers": ["QDQPropagationTransformer"]}


def onnx_graph(model: "torch.nn.Module", shape: tuple[int, int] = (28, 28)) -> bytes:
    """The model as an ONNX graph (float32, input ``x`` [n, 1, *shape], output ``logits``),
    exported in memory."""
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), torch.zeros(1, 1, *shape), buf, input_names=["x"], output_names=["logits"],
            dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, dynamo=False,
        )
    return buf.getvalue()


def stem_nodes(graph: bytes) -> list[str]:
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


def quantize_int8(graph: bytes, calibration: np.ndarray) -> bytes:
    """Static int8 quantization of an ONNX graph (QDQ, per-channel weights, activation
    ranges from ``calibration``: normalized network inputs [N, 1, H, W]), the stem (see
    :func:`stem_nodes`) kept in float32."""
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
                            nodes_to_exclude=stem_nodes(graph))
        finally:
            root.setLevel(level)
        return dst.read_bytes()


# ---------------------------------------------------------------------------- graphs beside a checkpoint


def graph_paths(checkpoint_path: str | os.PathLike) -> tuple[Path, Path]:
    """``(<stem>.onnx, <stem>.int8.onnx)`` beside a checkpoint ``<stem>.pt``."""
    path = Path(checkpoint_path)
    return path.with_suffix(".onnx"), path.with_suffix(".int8.onnx")


def _layout(model: Any) -> dict[str, Any]:
    """Where each answer sits in the network's output, as plain JSON."""
    from training import fields

    if model.KIND == "pairs":
        o = fields.PAIR_OUTPUTS
        layout: dict[str, Any] = {"left": [o.left.start, o.left.stop], "right": [o.right.start, o.right.stop],
                                  "pair": o.pair, "ends": [o.ends.start, o.ends.stop],
                                  "size": model.config.num_classes}
        if model.config.num_classes > o.digits:
            layout["digits"] = o.digits
        return layout
    if model.KIND == "numbers":
        return {"blank": fields.NUMBER_BLANK, "steps": fields.NUMBER_WIDTH // 4}
    return {}


def graph_metadata(ckpt: dict[str, Any], model: Any, source: Path) -> dict[str, Any]:
    """Everything the live view needs to run the checkpoint's graph (``training.graph``),
    but its precision, session and weights' digest."""
    norm = ckpt["normalization"]
    return {
        "format": GRAPH_FORMAT, "format_version": GRAPH_FORMAT_VERSION, "kind": model.KIND,
        "class_names": list(ckpt["class_names"]),
        "normalization": {"mean": float(norm["mean"]), "std": float(norm["std"]), "size": int(norm["size"]),
                          "box": int(norm["box"])},
        "input_shape": list(type(model).input_shape(model.config)), "output_layout": _layout(model),
        "model_config": model.config.to_dict(), "metrics": _plain(ckpt.get("metrics", {})),
        "source_name": source.name, "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
    }


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it (tensors and numpy values as lists and numbers)."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def with_metadata(graph: bytes, metadata: dict[str, Any]) -> bytes:
    """The graph with ``metadata`` (JSON values) and its weights' digest as its metadata_props."""
    import onnx

    model = onnx.load_model_from_string(graph)
    del model.metadata_props[:]
    for key, value in {**metadata, "weights_sha256": weights_digest(model)}.items():
        model.metadata_props.add(key=key, value=json.dumps(value))
    return model.SerializeToString()


def export_graphs(checkpoint_path: str | os.PathLike) -> list[Path]:
    """Write the checkpoint's ready-to-run graphs beside it: ``<stem>.onnx`` (float32)
    and, when it carries calibration inputs, ``<stem>.int8.onnx`` (a stale int8 graph
    of a checkpoint without them is removed). Each is read back and validated. Raises
    :class:`training.errors.CheckpointError` for a checkpoint that cannot be exported."""
    from training.checkpoint import model_from_checkpoint, read_checkpoint

    path = Path(checkpoint_path)
    ckpt = read_checkpoint(path)
    model = model_from_checkpoint(ckpt, path)
    meta = graph_metadata(ckpt, model, path)
    shape = type(model).input_shape(model.config)
    float_path, int8_path = graph_paths(path)
    graph = onnx_graph(model, shape)
    written = [write_atomic(float_path, with_metadata(graph, {**meta, "precision": "float32", "session": {}}))]
    calib = ckpt.get("calibration")
    if calib is not None:
        norm = meta["normalization"]
        x = ((calib.numpy().astype(np.float32) / 255.0 - norm["mean"]) / norm["std"])[:, None]
        q = quantize_int8(graph, np.ascontiguousarray(x, np.float32))
        written.append(write_atomic(int8_path, with_metadata(q, {**meta, "precision": "int8",
                                                                 "session": INT8_SESSION})))
    elif int8_path.exists():
        int8_path.unlink()
        log.info("removed %s: %s has no calibration inputs", int8_path, path)
    for p in written:
        read_graph(p, meta["kind"])
    return written


def parser(prog: str = "python -m training export") -> argparse.ArgumentParser:
    """The export command's options."""
    p = argparse.ArgumentParser(
        prog=prog, description="Write each checkpoint's ready-to-run ONNX graphs beside it: CKPT.onnx (float32) "
                               "and, when it carries calibration inputs, CKPT.int8.onnx, each carrying what the "
                               "live view needs to run it without PyTorch.")
    p.add_argument("checkpoints", nargs="+", metavar="CKPT", help="checkpoint files (e.g. assets/digits.pt)")
    return p


def main(argv: Sequence[str] | None = None, prog: str = "python -m training export") -> int:
    from training.errors import CheckpointError

    args = parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    failed = 0
    for ckpt in args.checkpoints:
        try:
            for p in export_graphs(ckpt):
                print(f"wrote {p}")
        except (CheckpointError, OSError) as err:
            for line in str(err).splitlines():
                print(f"error: {line}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(prog="python -m training.export"))
