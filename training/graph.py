"""Ready-to-run ONNX graphs of the three networks, read and validated without PyTorch.

Training writes, beside each checkpoint ``<stem>.pt``, ``<stem>.onnx`` (float32) and,
when the checkpoint carries calibration inputs, ``<stem>.int8.onnx``
(:func:`training.export.export_graphs`). The live view runs them with ONNX Runtime and
needs nothing else: each graph carries in its ONNX ``metadata_props`` (values JSON)::

    format, format_version   "realtime-digits-graph", 1
    kind                     "digits", "pairs" or "numbers"
    precision                "float32" or "int8"
    class_names              one name per output class
    normalization            {"mean", "std", "size", "box"}: the input recipe's constants
    input_shape              [height, width] of one field; the graph's input is
                             "x" [n, 1, height, width] (normalized), its output "logits"
    output_layout            where each answer sits (pairs: training.fields.PAIR_OUTPUTS
                             as index ranges; numbers: the CTC blank; digits: {})
    session                  ONNX Runtime settings it was measured with
                             ({"disabled_optimizers": [...]})
    model_config, metrics    the network's config and the checkpoint's figures
    source_name, source_sha256   the checkpoint it was made from
    weights_sha256           a digest of the graph's weights (its initializers)

:func:`read_graph` refuses a graph whose metadata is missing or malformed, of another
kind, whose weights do not match their digest (a damaged file) or are NaN/inf, or whose
normalization cannot be applied (a zero std), with one line per problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from training.errors import CheckpointError, GraphError
from training.fields import is_int as _is_int
from training.fields import normalization_problems

GRAPH_FORMAT = "realtime-digits-graph"
GRAPH_FORMAT_VERSION = 1
KINDS = ("digits", "pairs", "numbers")
PRECISIONS = ("float32", "int8")
INPUT_NAME, OUTPUT_NAME = "x", "logits"
_SHA256 = re.compile(r"[0-9a-f]{64}")

__all__ = ["GRAPH_FORMAT", "GRAPH_FORMAT_VERSION", "KINDS", "CheckpointError", "GraphError", "read_graph",
           "weights_digest", "graph_problems"]


def weights_digest(model: Any) -> str:
    """sha256 of an ONNX model's initializers (name, type, shape and bytes, in name order)."""
    from onnx import numpy_helper

    h = hashlib.sha256()
    for init in sorted(model.graph.initializer, key=lambda t: t.name):
        arr = np.ascontiguousarray(numpy_helper.to_array(init))
        h.update(init.name.encode())
        h.update(f"{init.data_type}:{list(init.dims)}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _non_finite_weights(model: Any) -> list[str]:
    from onnx import numpy_helper

    bad = []
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad.append(init.name)
    return bad


def _check_class_names(v: Any) -> list[str]:
    if not (isinstance(v, list) and v and all(isinstance(n, str) for n in v)):
        return [f"class_names must be a non-empty list of strings, not {v!r:.60}"]
    return []


def _check_shape(v: Any) -> list[str]:
    if not (isinstance(v, list) and len(v) == 2 and all(_is_int(d) and d > 0 for d in v)):
        return [f"input_shape must be [height, width] (positive integers), not {v!r:.60}"]
    return []


def _check_dict(name: str) -> Callable[[Any], list[str]]:
    def check(v: Any) -> list[str]:
        return [] if isinstance(v, dict) else [f"{name} must be a dict, not {type(v).__name__}"]
    return check


def _check_sha(name: str) -> Callable[[Any], list[str]]:
    def check(v: Any) -> list[str]:
        return [] if isinstance(v, str) and _SHA256.fullmatch(v) else [f"{name} is not a sha256 hex digest"]
    return check


def _check_choice(name: str, choices: tuple[str, ...]) -> Callable[[Any], list[str]]:
    def check(v: Any) -> list[str]:
        return [] if v in choices else [f"{name} {v!r:.40} is not one of {', '.join(choices)}"]
    return check


# metadata key -> its check (a list of problems)
SCHEMA: dict[str, Callable[[Any], list[str]]] = {
    "kind": _check_choice("kind", KINDS),
    "precision": _check_choice("precision", PRECISIONS),
    "class_names": _check_class_names,
    "normalization": normalization_problems,
    "input_shape": _check_shape,
    "output_layout": _check_dict("output_layout"),
    "session": _check_dict("session"),
    "model_config": _check_dict("model_config"),
    "metrics": _check_dict("metrics"),
    "source_name": lambda v: [] if isinstance(v, str) and v else ["source_name must be a file name"],
    "source_sha256": _check_sha("source_sha256"),
    "weights_sha256": _check_sha("weights_sha256"),
}


def _metadata(model: Any) -> tuple[dict[str, Any], list[str]]:
    """The JSON-decoded metadata and the problems of decoding it."""
    raw = {p.key: p.value for p in model.metadata_props}
    if raw.get("format") is None:
        return {}, [f"not a {GRAPH_FORMAT} graph (its metadata names no format)"]
    meta, problems, undecodable = {}, [], set()
    for key, value in raw.items():
        try:
            meta[key] = json.loads(value)
        except ValueError:
            problems.append(f"metadata {key!r} is not JSON")
            undecodable.add(key)
    if meta.get("format") != GRAPH_FORMAT:
        return meta, [f"not a {GRAPH_FORMAT} graph (format {meta.get('format')!r:.40})"]
    version = meta.get("format_version")
    if version != GRAPH_FORMAT_VERSION or not _is_int(version):
        return meta, [f"graph format version {version!r:.20} ({type(version).__name__}), this code reads "
                      f"version {GRAPH_FORMAT_VERSION}"]
    for key, check in SCHEMA.items():
        if key in undecodable:
            continue
        if key not in meta:
            problems.append(f"metadata lacks {key!r}")
        else:
            problems += check(meta[key])
    return meta, problems


def _dims(value_info: Any) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param
            for d in value_info.type.tensor_type.shape.dim]


def _io_problems(model: Any, meta: dict[str, Any]) -> list[str]:
    """The graph's input and output against what its metadata says."""
    inputs, outputs = list(model.graph.input), list(model.graph.output)
    if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME]:
        return [f"the graph's input and output must be {INPUT_NAME!r} and {OUTPUT_NAME!r}, not "
                f"{[i.name for i in inputs]} and {[o.name for o in outputs]}"]
    problems = []
    shape, names = meta.get("input_shape"), meta.get("class_names")
    dims = _dims(inputs[0])
    if isinstance(shape, list) and (len(dims) != 4 or dims[1:] != [1, *shape]):
        problems.append(f"the graph's input is {dims}, not [n, 1, {shape[0] if shape else '?'}, "
                        f"{shape[1] if len(shape) > 1 else '?'}] as its metadata says")
    out = _dims(outputs[0])
    if isinstance(names, list) and out and isinstance(out[-1], int) and out[-1] > 0 and out[-1] != len(names):
        problems.append(f"the graph has {out[-1]} outputs per answer for {len(names)} class names")
    return problems


def graph_problems(model: Any, kind: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """``(metadata, problems)`` of a loaded ONNX model: its metadata's schema, its kind,
    its input and output, its weights' digest and finiteness."""
    meta, problems = _metadata(model)
    if not meta or (problems and "format" in problems[0]):
        return meta, problems
    if kind is not None and meta.get("kind") in KINDS and meta["kind"] != kind:
        problems.insert(0, f"a {meta['kind']} graph, not a {kind} graph")
    problems += _io_problems(model, meta)
    if isinstance(meta.get("weights_sha256"), str) and weights_digest(model) != meta["weights_sha256"]:
        problems.append("its weights do not match their digest (the file is damaged)")
    bad = _non_finite_weights(model)
    if bad:
        problems.append(f"NaN or infinite weights in {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}")
    return meta, problems


def read_graph(path: str | os.PathLike, kind: str | None = None) -> tuple[bytes, dict[str, Any]]:
    """``(graph bytes, metadata)`` of a graph file that training wrote, validated (see
    the module docstring); ``kind``: the kind the caller needs (``None``: any). Raises
    :class:`GraphError`, one line per problem, each naming the file."""
    path = Path(path)
    if not path.is_file():
        raise GraphError(f"{path}: graph not found")
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError as err:
        raise GraphError(f"{path}: reading graphs needs the onnx package ({err})") from err
    data = path.read_bytes()
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as err:
        raise GraphError(f"{path}: not a readable ONNX graph (corrupt or truncated: {type(err).__name__})") from err
    if not model.graph.node:
        raise GraphError(f"{path}: not a readable ONNX graph (it holds no nodes)")
    meta, problems = graph_problems(model, kind)
    if problems:
        raise GraphError("\n".join(f"{path}: {p}" for p in problems))
    return data, meta
