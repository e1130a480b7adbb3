"""The readers (``realtime.readers``): decoding, CTC likelihoods, backends, int8, checkpoint
kinds, and what the pair and number readers add to the live view."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmarks.metrics import Counts, score_frame
from benchmarks.scenes import SceneConfig, render_scene
from realtime import split
from realtime.readers import BLANK, DigitReadings, PairReadings, ctc_log_likelihoods, log_softmax, reading_scores
from realtime.recognizer import DEFAULT_PAIR_WEIGHTS, DEFAULT_SEQ_WEIGHTS, Recognizer, configure
from training.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from training.fields import NUMBER_WIDTH, PAIR_WIDTH

needs_pairs = pytest.mark.skipif(not DEFAULT_PAIR_WEIGHTS.is_file(), reason="no assets/pairs.pt")
needs_numbers = pytest.mark.skipif(not DEFAULT_SEQ_WEIGHTS.is_file(), reason="no assets/sequences.pt")


def _touching(seed: int, mnist_test):
    return render_scene(seed, SceneConfig.clean(touching_prob=1.0, group_prob=1.0), mnist_test)


def pair_stretches(rec: Recognizer, frame: np.ndarray) -> tuple[np.ndarray, list]:
    """The stretches the pair reader would read in a frame if no blob were sure."""
    page = rec.page(frame)
    unsure = DigitReadings(np.zeros((len(page.blobs), 11), np.float32))
    plan = split.refine(split.propose(page.blobs), unsure, pairs=True)
    return page.ink, [plan.pair_crops[e.crop] for edges in plan.pair_edges.values() for e in edges]


# --------------------------------------------------------------------------- decoding


def test_pair_outputs_decode_into_their_answers():
    logits = np.zeros((1, 24))
    logits[0, 3], logits[0, 17], logits[0, 20], logits[0, 21], logits[0, 22], logits[0, 23] = 9, 9, 5, 0, -5, -5
    r = PairReadings.from_logits(logits)
    assert r.left[0].argmax() == 3 and r.right[0].argmax() == 7 and r.spell(0) == "37"
    assert r.left[0].sum() == pytest.approx(1.0) and r.pair[0] > 0.99
    assert r.ends[0, 0] == pytest.approx(0.5) and r.ends[0, 1] < 0.01
    assert r.digits[0] < 0.01
    assert r.confidence[0] == pytest.approx(r.pair[0] * r.left[0].max() * r.right[0].max())
    # a reader trained before the "digits" output takes every crop for digits
    assert PairReadings.from_logits(logits[:, :23]).digits[0] == 1.0
    assert len(PairReadings.empty().pair) == 0


def test_digit_readings_know_the_not_a_digit_class():
    probs = np.array([[0.1] * 9 + [0.05, 0.05], [0.0] * 10 + [1.0]], np.float32)
    r = DigitReadings(probs)
    assert r.digit(0) == 0 and r.is_digit(0) and not r.is_digit(1)
    assert r.confidence[1] == pytest.approx(1e-12)  # floored, for its logarithm
    assert len(r.extend(r)) == 4 and r.classes == 11


@pytest.mark.parametrize("reading", ["7", "12", "11", "9077", "55555", "1111111111111111"])
def test_ctc_log_likelihood_matches_torch(reading: str) -> None:
    rng = np.random.default_rng(len(reading))
    lp = log_softmax(rng.normal(size=(16, 11)) * 3)
    target = torch.tensor([[int(c) for c in reading]])
    ref = -F.ctc_loss(torch.tensor(lp)[:, None], target, torch.tensor([16]), torch.tensor([len(reading)]),
                      blank=BLANK, reduction="sum").item()
    got = float(ctc_log_likelihoods(lp, [reading])[0])
    if np.isinf(ref):  # 16 ones need 31 columns (a blank between each two)
        assert got == -np.inf
    else:
        assert got == pytest.approx(ref, abs=1e-9)


def test_ctc_scores_many_readings_at_once_as_one_by_one():
    rng = np.random.default_rng(3)
    readings = ["", "0", "11", "100", "1234", "99999", "5" * 20] + [str(v) for v in rng.integers(0, 10**5, 20)]
    logits = rng.normal(size=(32, 11)) * 4
    together = reading_scores(logits, readings)
    for r in readings:
        assert reading_scores(logits, [r])[r] == together[r]
    assert np.isinf(together["5" * 20]) and np.isfinite(together[""])


# --------------------------------------------------------------------------- backends


@pytest.fixture(scope="module")
def frame_fields(recognizer, mnist_test):
    frame, _, _ = render_scene(0, SceneConfig.clean(), mnist_test)
    page = recognizer.page(frame)
    fields = recognizer.digit_reader.fields(page.ink, page.blobs)
    assert len(fields) >= 10
    return fields


def _probs(rec: Recognizer, x: np.ndarray) -> np.ndarray:
    return rec.digit_reader.read_fields(x).probs


def test_a_batch_reads_as_single_calls(recognizer, frame_fields):
    batch = _probs(recognizer, frame_fields)
    classes = len(recognizer.class_names)  # 10 digits, and "not a digit" when trained with it
    assert classes in (10, 11) and batch.shape == (len(frame_fields), classes)
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, atol=1e-5)
    single = np.concatenate([_probs(recognizer, frame_fields[i:i + 1]) for i in range(len(frame_fields))])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    assert _probs(recognizer, frame_fields[:0]).shape == (0, classes)


def test_torch_and_onnx_backends_agree(recognizer, frame_fields):
    torch_rec = Recognizer.load(recognizer.weights_path, backend="torch")
    onnx_rec = Recognizer.load(recognizer.weights_path, backend="onnx")
    assert torch_rec.backend.name == "torch" and onnx_rec.backend.name == "onnxruntime"
    rng = np.random.default_rng(0)
    x = np.concatenate([frame_fields, rng.random((8, 28, 28), dtype=np.float32)])
    np.testing.assert_allclose(_probs(torch_rec, x), _probs(onnx_rec, x), atol=1e-4)


def test_int8_backend_reads_like_float(recognizer, frame_fields, mnist_test):
    """The default backend quantizes to int8 from the checkpoint's calibration images; it
    must read what the float model reads: real frame crops and 2,000 MNIST test digits."""
    assert recognizer.backend.name == "onnxruntime int8"
    float_rec = Recognizer.load(recognizer.weights_path, backend="onnx")
    p8, pf = _probs(recognizer, frame_fields), _probs(float_rec, frame_fields)
    assert (p8.argmax(1) == pf.argmax(1)).all()
    assert np.abs(p8 - pf).max() < 0.15  # quantization noise, not a different model
    images, labels = mnist_test
    x = images[:2000].astype(np.float32) / 255
    acc8 = (_probs(recognizer, x).argmax(1) == labels[:2000]).mean()
    accf = (_probs(float_rec, x).argmax(1) == labels[:2000]).mean()
    assert acc8 >= accf - 0.002, (acc8, accf)


def test_int8_graph_keeps_the_stem_in_float(recognizer):
    """The one-input-channel stem runs in float32 (int8 kernels handle that shape badly);
    every later convolution is quantized."""
    import onnx

    from training.export import onnx_graph, quantize_int8, stem_nodes

    graph = onnx_graph(recognizer.model)
    stem = stem_nodes(graph)
    ops = [n.op_type for n in onnx.load_from_string(graph).graph.node]
    assert ops[: len(stem)] == ["Conv", "Relu", "MaxPool"]
    calib = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    q = onnx.load_from_string(quantize_int8(graph, calib))
    convs = [n for n in q.graph.node if n.op_type == "Conv"]
    # the first Conv reads the float weight directly; the others read dequantized int8
    weight_inputs = [n.input[1] for n in convs]
    first, rest = weight_inputs[0], weight_inputs[1:]
    producers = {o: n.op_type for n in q.graph.node for o in n.output}
    assert producers.get(first) != "DequantizeLinear"
    assert rest and all(producers.get(w) == "DequantizeLinear" for w in rest)


def test_int8_needs_calibration_images(recognizer, tmp_path):
    ckpt = read_checkpoint(recognizer.weights_path)
    del ckpt["calibration"]
    path = save_checkpoint(ckpt, tmp_path / "old.pt")
    assert Recognizer.load(path).backend.name == "onnxruntime"  # auto falls back to float
    with pytest.raises(CheckpointError, match="calibration"):
        Recognizer.load(path, backend="int8")
    ckpt["calibration"] = ckpt["state_dict"]["head.weight"]  # wrong dtype and shape
    save_checkpoint(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="calibration images must be uint8"):
        Recognizer.load(tmp_path / "bad.pt")


# --------------------------------------------------------------------------- checkpoint kinds


def test_each_reader_refuses_a_checkpoint_of_another_kind(recognizer):
    with pytest.raises(CheckpointError, match="not a pair reader|not a pairs graph"):
        Recognizer.load(recognizer.weights_path, pair_weights=recognizer.weights_path)
    with pytest.raises(CheckpointError, match="not found"):
        Recognizer.load(recognizer.weights_path, pair_weights="nonexistent.pt")
    assert Recognizer.load(recognizer.weights_path, pair_weights="").pair_backend is None
    if DEFAULT_PAIR_WEIGHTS.is_file():
        with pytest.raises(CheckpointError, match="not a number reader|not a numbers graph"):
            Recognizer.load(recognizer.weights_path, seq_weights=DEFAULT_PAIR_WEIGHTS)
        with pytest.raises(CheckpointError, match="not a digit reader|not a digits graph"):
            Recognizer.load(DEFAULT_PAIR_WEIGHTS)
    assert Recognizer.load(recognizer.weights_path, seq_weights="").seq_backend is None


@needs_pairs
def test_a_pair_reader_without_the_digits_output_still_loads(recognizer, tmp_path: Path, mnist_test) -> None:
    """Pair readers trained before the "these are digits" output (23 outputs) load and
    read pairs; to them every blob is digits."""
    ckpt = read_checkpoint(DEFAULT_PAIR_WEIGHTS)
    ckpt["model_config"] = {**ckpt["model_config"], "num_classes": 23}
    ckpt["class_names"] = ckpt["class_names"][:23]
    ckpt["state_dict"] = {k: (v[:23] if k.startswith("head.2.") else v) for k, v in ckpt["state_dict"].items()}
    path = save_checkpoint(ckpt, tmp_path / "old_pairs.pt")
    old = Recognizer.load(recognizer.weights_path, pair_weights=path)
    frame, truths, _ = _touching(301, mnist_test)
    ink, parts = pair_stretches(old, frame)
    assert len(parts) >= 5 and (old.pair_reader.read(ink, parts).digits == 1.0).all()
    assert score_frame(old.detect(frame), truths).read_correctly >= 0.7


# --------------------------------------------------------------------------- what the readers add


@needs_pairs
def test_pair_reader_reads_touching_digits_the_cuts_miss(recognizer, mnist_test):
    """On numbers written with every digit touching the next, the shipped pair reader
    reads clearly more digits than straight cuts alone, without false readings."""
    assert recognizer.pair_backend is not None
    plain = Recognizer.load(recognizer.weights_path, pair_weights="")
    with_pairs, without = Counts(), Counts()
    for seed in range(200, 206):
        frame, truths, _ = _touching(seed, mnist_test)
        with_pairs += score_frame(recognizer.detect(frame), truths)
        without += score_frame(plain.detect(frame), truths)
    assert with_pairs.read_correctly >= without.read_correctly + 0.04, (with_pairs.read_correctly,
                                                                        without.read_correctly)
    assert with_pairs.precision >= 0.97


@needs_numbers
def test_number_reader_reads_touching_numbers_better(recognizer, mnist_test) -> None:
    """On numbers written with every digit touching the next, the shipped number reader
    makes the live view read more digits right, without false readings."""
    assert recognizer.seq_backend is not None
    plain = Recognizer.load(recognizer.weights_path, seq_weights="")
    with_seq, without = Counts(), Counts()
    for seed in range(200, 212):
        frame, truths, _ = _touching(seed, mnist_test)
        with_seq += score_frame(recognizer.detect(frame), truths)
        without += score_frame(plain.detect(frame), truths)
    assert with_seq.correct > without.correct, (with_seq.correct, without.correct)
    assert with_seq.precision >= 0.97


def test_blobs_read_whole_with_confidence_get_no_lattice(recognizer, mnist_test, monkeypatch) -> None:
    """Lattices and pair crops go only to the blobs the digit reader is unsure of: on
    touching and separate digits that sends far fewer crops through the networks, and
    reads the same digits as offering every wide blob's lattice."""
    sizes: list[int] = []
    read_fields = recognizer.digit_reader.read_fields
    monkeypatch.setattr(recognizer.digit_reader, "read_fields", lambda x: sizes.append(len(x)) or read_fields(x))
    frames = [render_scene(seed, SceneConfig.clean(touching_prob=0.2, group_prob=0.8), mnist_test)[0]
              for seed in range(300, 306)]
    gated = [recognizer.detect(f) for f in frames]
    n_gated, sizes[:] = sum(sizes), []
    unsure = recognizer.with_config(configure(settings=["split.sure_whole=1.01"]))  # nothing is sure
    every = [unsure.detect(f) for f in frames]
    n_every = sum(sizes)
    a = [(d.box, d.digit) for ds in gated for d in ds]
    b = [(d.box, d.digit) for ds in every for d in ds]
    assert n_gated < 0.8 * n_every, (n_gated, n_every)
    assert len(set(a) & set(b)) >= 0.97 * max(len(a), len(b)), (len(a), len(b), len(set(a) & set(b)))


@needs_pairs
def test_letters_the_pair_reader_calls_no_digits_are_not_split(recognizer, mnist_test) -> None:
    """Words and wide letters (script n, u, H, M, w) that the cut lattice would read as
    chains of 1s, and the pair reader as two 1s, are not split when the pair reader says
    they are no digits; the digits among them are still read."""
    from benchmarks.scenes import render_sheet_with_distractors

    frames = [render_sheet_with_distractors(seed, kinds=("letters",), config=SceneConfig.clean(), digits=mnist_test)
              for seed in range(300, 304)]
    ungated = recognizer.with_config(configure(settings=["split.digits_gate=0", "split.digits_drop=0"]))
    gated, open_ = Counts(), Counts()
    for frame, truths, _ in frames:
        gated += score_frame(recognizer.detect(frame), truths)
        open_ += score_frame(ungated.detect(frame), truths)
    false_gated, false_open = gated.detections - gated.matched, open_.detections - open_.matched
    assert false_open >= 20, "the sheets should hold letters the lattice misreads"
    assert false_gated <= 0.75 * false_open, (false_gated, false_open)
    assert gated.read_correctly >= open_.read_correctly - 0.01, (gated.read_correctly, open_.read_correctly)


@needs_numbers
def test_number_reader_is_asked_only_where_readings_are_close(recognizer, mnist_test, monkeypatch) -> None:
    """Blobs whose best reading leads every other by ``seq_contest`` are not sent to the
    number reader: fewer blobs go through it, and every digit read is the same as asking
    it about every blob it could judge."""
    asked: list[int] = []
    read = recognizer.number_reader.read
    monkeypatch.setattr(recognizer.number_reader, "read", lambda ink, blobs: asked.append(len(blobs)) or read(ink, blobs))
    frames = [render_scene(seed, SceneConfig(touching_prob=0.6, group_prob=0.9), mnist_test)[0] for seed in range(200, 208)]
    runs = []
    for rec in (recognizer, recognizer.with_config(configure(settings=["split.seq_contest=1e9"]))):
        asked.clear()
        dets = [[(d.box, d.digit) for d in rec.detect(f)] for f in frames]
        runs.append((sum(asked), dets))
    (few, dets_few), (every, dets_every) = runs
    assert 0 < few < every, (few, every)
    assert dets_few == dets_every


# --------------------------------------------------------------------------- calibration


def _calibrated(kind: str, src: Path, tmp_path: Path, mnist_dir: Path, repo_root: Path) -> Path:
    ckpt = read_checkpoint(src)
    ckpt.pop("calibration", None)
    path = save_checkpoint(ckpt, tmp_path / f"{kind}.pt")
    res = subprocess.run([sys.executable, "-m", "training.calibrate", str(path), "--data-dir", str(mnist_dir),
                          "--images", "128"], cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return path


@needs_pairs
def test_calibrating_a_pair_checkpoint_makes_an_int8_reader_that_reads_like_float(
        recognizer, mnist_dir: Path, repo_root: Path, tmp_path: Path, mnist_test) -> None:
    """``training.calibrate`` on a pair reader stores composed pair fields; the int8
    reader built from them answers what the float reader does on real pair crops."""
    float_rec = Recognizer.load(recognizer.weights_path, pair_weights=DEFAULT_PAIR_WEIGHTS, backend="onnx")
    path = _calibrated("pairs", DEFAULT_PAIR_WEIGHTS, tmp_path, mnist_dir, repo_root)
    calib = read_checkpoint(path)["calibration"]
    assert tuple(calib.shape) == (128, 28, PAIR_WIDTH) and calib.dtype == torch.uint8
    int8_rec = Recognizer.load(recognizer.weights_path, pair_weights=path)
    assert int8_rec.pair_backend.name == "onnxruntime int8"
    same = gate_same = total = 0
    for seed in range(200, 204):
        ink, parts = pair_stretches(float_rec, _touching(seed, mnist_test)[0])
        f, q = float_rec.pair_reader.read(ink, parts), int8_rec.pair_reader.read(ink, parts)
        same += int(((f.left.argmax(1) == q.left.argmax(1)) & (f.right.argmax(1) == q.right.argmax(1))).sum())
        total += len(parts)
        assert np.abs(f.pair - q.pair).max() < 0.3
        gate_same += int(((f.digits < 0.5) == (q.digits < 0.5)).sum())
    assert total >= 20 and same >= 0.9 * total and gate_same >= 0.95 * total, (same, gate_same, total)


@needs_numbers
def test_calibrating_a_number_reader_makes_an_int8_reader_that_chooses_like_float(
        recognizer, mnist_dir: Path, repo_root: Path, tmp_path: Path, mnist_test) -> None:
    """``training.calibrate`` on a number reader stores composed numbers; the int8 reader
    built from them picks the same reading as the float one among each touching blob's
    chains."""
    float_rec = Recognizer.load(recognizer.weights_path, seq_weights=DEFAULT_SEQ_WEIGHTS, backend="onnx")
    path = _calibrated("numbers", DEFAULT_SEQ_WEIGHTS, tmp_path, mnist_dir, repo_root)
    calib = read_checkpoint(path)["calibration"]
    assert tuple(calib.shape) == (128, 28, NUMBER_WIDTH) and calib.dtype == torch.uint8
    int8_rec = Recognizer.load(recognizer.weights_path, seq_weights=path)
    assert int8_rec.seq_backend.name == "onnxruntime int8"
    same = total = 0
    options = [str(v) for v in range(100)] + [str(v) for v in range(100, 1000, 7)]
    for seed in range(200, 204):
        page = float_rec.page(_touching(seed, mnist_test)[0])
        wide = [b for b in page.blobs if b.box[2] >= 1.2 * b.box[3]]
        for lf, l8 in zip(float_rec.number_reader.read(page.ink, wide), int8_rec.number_reader.read(page.ink, wide)):
            sf, s8 = reading_scores(lf, options), reading_scores(l8, options)
            same += max(sf, key=sf.get) == max(s8, key=s8.get)
            total += 1
    assert total >= 15 and same >= 0.9 * total, (same, total)
