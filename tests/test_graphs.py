"""Tests for training.export's graphs beside a checkpoint and training.graph's reader.

Covers: float32 and int8 graphs of all three kinds, their metadata (what the live view
needs without torch), outputs equal to the network's; a checkpoint without calibration
getting a float graph only (a stale int8 one removed); every kind of bad graph refused
with one line per problem (a parametrized matrix); reading without torch; the shipped
graphs matching the shipped checkpoints; ``python -m training export``; and (slow, on
MNIST) the shipped int8 graph reading the test set as quantizing at load time did.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from training import fields
from training.checkpoint import make_checkpoint, save_checkpoint
from training.export import export_graphs, graph_paths, main as export_main, with_metadata
from training.graph import GraphError, read_graph, weights_digest
from training.model import ModelConfig, build_model

# kind -> (architecture, outputs, input width)
KINDS = {"digits": ("digitnet", 11, 28), "pairs": ("pairnet", fields.PAIR_OUTPUTS.size, fields.PAIR_WIDTH),
         "numbers": ("seqnet", fields.NUMBER_BLANK + 1, fields.NUMBER_WIDTH)}


def _tiny_checkpoint(tmp_path: Path, kind: str, calibration: bool = True, name: str = "net.pt") -> Path:
    arch, classes, width = KINDS[kind]
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, widths=(4, 8, 8), num_classes=classes))
    model.train()
    with torch.no_grad():  # batch-norm statistics of its own, so a lost buffer would show
        model(torch.randn(16, 1, 28, width))
    model.eval()
    g = torch.Generator().manual_seed(1)
    calib = torch.randint(0, 256, (64, 28, width), generator=g, dtype=torch.uint8) if calibration else None
    names = [f"class {i}" for i in range(classes)]
    return save_checkpoint(make_checkpoint(model, class_names=names, calibration=calib,
                                           metrics={"figure": 0.5}), tmp_path / name)


def _run(graph: bytes, meta: dict[str, Any], x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    session = ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"],
                                   disabled_optimizers=meta["session"].get("disabled_optimizers") or None)
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("kind", list(KINDS))
def test_export_writes_graphs_that_run_like_the_network(tmp_path: Path, kind: str) -> None:
    from training.checkpoint import load_checkpoint

    path = _tiny_checkpoint(tmp_path, kind)
    written = export_graphs(path)
    assert written == list(graph_paths(path)) == [tmp_path / "net.onnx", tmp_path / "net.int8.onnx"]
    model, ckpt = load_checkpoint(path)
    x = np.random.default_rng(2).normal(size=(5, 1, 28, KINDS[kind][2])).astype(np.float32)
    with torch.inference_mode():
        want = model(torch.from_numpy(x)).numpy()
    outs = {}
    for p in written:
        graph, meta = read_graph(p, kind)
        assert graph == p.read_bytes()
        assert meta["kind"] == kind and meta["class_names"] == ckpt["class_names"]
        assert meta["normalization"] == {"mean": 0.1307, "std": 0.3081, "size": 28, "box": 20}
        assert meta["input_shape"] == [28, KINDS[kind][2]] and meta["metrics"] == {"figure": 0.5}
        assert meta["source_name"] == "net.pt" and meta["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert meta["model_config"] == model.config.to_dict()
        outs[meta["precision"]] = _run(graph, meta, x)
    assert set(outs) == {"float32", "int8"}
    np.testing.assert_allclose(outs["float32"], want, atol=1e-4, rtol=1e-4)
    # int8 is an approximation of the same function
    corr = np.corrcoef(outs["int8"].ravel(), want.ravel())[0, 1]
    assert outs["int8"].shape == want.shape and corr > 0.9, corr
    layout = read_graph(written[0])[1]["output_layout"]
    if kind == "pairs":
        o = fields.PAIR_OUTPUTS
        assert layout == {"left": [0, 10], "right": [10, 20], "pair": o.pair, "ends": [o.ends.start, o.ends.stop],
                          "digits": o.digits, "size": o.size}
    elif kind == "numbers":
        assert layout["blank"] == fields.NUMBER_BLANK


def test_a_checkpoint_without_calibration_gets_a_float_graph_only(tmp_path: Path) -> None:
    stale = tmp_path / "net.int8.onnx"
    stale.write_bytes(b"an older graph")
    written = export_graphs(_tiny_checkpoint(tmp_path, "digits", calibration=False))
    assert written == [tmp_path / "net.onnx"] and not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx", "net.pt"]  # no temp files either


@pytest.fixture(scope="module")
def good_graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("graph")
    return export_graphs(_tiny_checkpoint(root, "pairs"))[1]


def _edit(change: Callable[[Any, dict[str, str]], None], redigest: bool = False) -> Callable[[Path, Path], None]:
    """A damage: ``change(model, metadata)`` applied to the good graph, written to ``dst``."""
    def damage(src: Path, dst: Path) -> None:
        model = onnx.load_model_from_string(src.read_bytes())
        meta = {p.key: p.value for p in model.metadata_props}
        change(model, meta)
        if redigest:
            meta["weights_sha256"] = json.dumps(weights_digest(model))
        del model.metadata_props[:]
        for k, v in meta.items():
            model.metadata_props.add(key=k, value=v)
        dst.write_bytes(model.SerializeToString())
    return damage


def _set(key: str, value: Any) -> Callable[[Any, dict[str, str]], None]:
    return lambda model, meta: meta.__setitem__(key, json.dumps(value))


def _first_float_weight(model: Any) -> Any:
    return next(t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and np.prod(t.dims) > 4)


def _scale_weight(factor: float) -> Callable[[Any, dict[str, str]], None]:
    def change(model: Any, meta: dict[str, str]) -> None:
        t = _first_float_weight(model)
        arr = onnx.numpy_helper.to_array(t) * np.float32(factor)
        t.CopyFrom(onnx.numpy_helper.from_array(arr, t.name))
    return change


def _flip_weight_byte(src: Path, dst: Path) -> None:
    """One byte flipped inside a weight tensor of the file itself (as disk damage does)."""
    data = bytearray(src.read_bytes())
    raw = _first_float_weight(onnx.load_model_from_string(bytes(data))).raw_data
    at = bytes(data).index(raw) + len(raw) // 2
    data[at] ^= 0x40
    dst.write_bytes(bytes(data))


# name -> (damage(src, dst), text the first error line must contain, kind asked for)
DAMAGES: dict[str, tuple[Callable[[Path, Path], None], str, str | None]] = {
    "missing": (lambda src, dst: None, "graph not found", None),
    "random_bytes": (lambda src, dst: dst.write_bytes(np.random.default_rng(0).bytes(3000)), "not a readable ONNX", None),
    "truncated": (lambda src, dst: dst.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 2]), "", None),
    "empty": (lambda src, dst: dst.write_bytes(b""), "not a readable ONNX", None),
    "wrong_kind": (lambda src, dst: dst.write_bytes(src.read_bytes()), "a pairs graph, not a digits graph", "digits"),
    "foreign": (_edit(lambda model, meta: meta.clear()), "metadata names no format", None),
    "version_as_text": (_edit(_set("format_version", "1")), "version '1' (str), this code reads version 1", None),
    "version_2": (_edit(_set("format_version", 2)), "version 2 (int)", None),
    "no_normalization": (_edit(lambda model, meta: meta.pop("normalization")), "lacks 'normalization'", None),
    "bad_json": (_edit(lambda model, meta: meta.__setitem__("metrics", "{not json")), "'metrics' is not JSON", None),
    "zero_std": (_edit(_set("normalization", {"mean": 0.1, "std": 0.0, "size": 28, "box": 20})), "std 0.0", None),
    "std_as_text": (_edit(_set("normalization", {"mean": 0.1, "std": "0.3", "size": 28, "box": 20})), "std '0.3'",
                    None),
    "class_names_int": (_edit(_set("class_names", 7)), "class_names must be", None),
    "class_count": (_edit(_set("class_names", ["a", "b"])), "24 outputs per answer for 2 class names", None),
    "shape": (_edit(_set("input_shape", [28, 28])), "not [n, 1, 28, 28]", None),
    "unknown_kind": (_edit(_set("kind", "letters")), "kind 'letters'", None),
    "weights_changed": (_edit(_scale_weight(1.5)), "do not match their digest", None),
    "byte_flipped": (_flip_weight_byte, "do not match their digest", None),
    "nan_weights": (_edit(_scale_weight(float("nan")), redigest=True), "NaN or infinite weights", None),
}


@pytest.mark.parametrize("case", list(DAMAGES))
def test_bad_graphs_are_refused_one_line_per_problem(case: str, good_graph: Path, tmp_path: Path) -> None:
    damage, needle, kind = DAMAGES[case]
    dst = tmp_path / "bad.int8.onnx"
    damage(good_graph, dst)
    with pytest.raises(GraphError) as err:
        read_graph(dst, kind)
    lines = str(err.value).splitlines()
    assert lines and all(line.startswith(f"{dst}: ") for line in lines), lines
    assert needle in lines[0], lines


def test_graphs_are_read_without_torch(repo_root: Path) -> None:
    code = ("import sys\nfrom training.graph import read_graph\n"
            "graph, meta = read_graph('assets/digits.int8.onnx', 'digits')\n"
            "assert meta['precision'] == 'int8' and len(graph) > 1000\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]", proc.stdout


@pytest.mark.parametrize("stem,kind", [("digits", "digits"), ("pairs", "pairs"), ("sequences", "numbers")])
def test_shipped_graphs_are_the_shipped_checkpoints(repo_root: Path, stem: str, kind: str) -> None:
    from training.checkpoint import read_checkpoint

    ckpt_path = repo_root / "assets" / f"{stem}.pt"
    ckpt = read_checkpoint(ckpt_path)
    sha = hashlib.sha256(ckpt_path.read_bytes()).hexdigest()
    for path, precision in zip(graph_paths(ckpt_path), ("float32", "int8")):
        _, meta = read_graph(path, kind)
        assert meta["precision"] == precision and meta["source_sha256"] == sha, f"{path} is stale: re-export it"
        assert meta["class_names"] == ckpt["class_names"]


def test_export_cli(tmp_path: Path, capsys) -> None:
    a = _tiny_checkpoint(tmp_path, "digits", name="a.pt")
    b = _tiny_checkpoint(tmp_path, "numbers", calibration=False, name="b.pt")
    assert export_main([str(a), str(b)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"wrote {tmp_path / 'a.onnx'}", f"wrote {tmp_path / 'a.int8.onnx'}", f"wrote {tmp_path / 'b.onnx'}"]
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert export_main([str(tmp_path / "junk.pt"), str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err) and "none.pt" in err[1], err


def test_metadata_is_written_as_json_values(tmp_path: Path) -> None:
    graph = export_graphs(_tiny_checkpoint(tmp_path, "digits", calibration=False))[0].read_bytes()
    again = with_metadata(graph, {"kind": "digits"})  # metadata replaced, not appended
    props = {p.key: p.value for p in onnx.load_model_from_string(again).metadata_props}
    assert set(props) == {"kind", "weights_sha256"} and json.loads(props["kind"]) == "digits"


@pytest.mark.slow
def test_shipped_int8_graph_reads_mnist_as_quantizing_at_load_time(repo_root: Path, mnist_dir: Path) -> None:
    """The int8 graph training ships gives the predictions the live view's own
    quantization of the checkpoint gives (the route it replaces), and MNIST's accuracy."""
    from training.checkpoint import load_checkpoint
    from training.data import load_mnist
    from training.export import INT8_SESSION, onnx_graph, quantize_int8

    graph, meta = read_graph(repo_root / "assets" / "digits.int8.onnx", "digits")
    model, ckpt = load_checkpoint(repo_root / "assets" / "digits.pt")
    norm = meta["normalization"]
    calib = ((ckpt["calibration"].numpy().astype(np.float32) / 255 - norm["mean"]) / norm["std"])[:, None]
    at_load = quantize_int8(onnx_graph(model), np.ascontiguousarray(calib))
    images, labels = load_mnist("test", mnist_dir)
    x = ((images.numpy().astype(np.float32) / 255 - norm["mean"]) / norm["std"])[:, None]
    shipped = _run(graph, meta, x).argmax(1)
    loaded = _run(at_load, {"session": INT8_SESSION}, x).argmax(1)
    assert (shipped == loaded).mean() >= 0.9999, int((shipped != loaded).sum())
    assert (shipped == labels.numpy()).mean() >= 0.996
