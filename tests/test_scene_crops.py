"""Tests for benchmarks.scene_crops (pipeline crops of rendered MNIST training digits)
and the ``--scene-crops`` option of training that mixes them in.

Also the pair reader's inputs mined the same way (``--pairs``) and the ``--scene-pairs``
and ``--init`` options of ``python -m training.pairs`` that fine-tune a reader on them.

Covers: crops mined from a rendered frame carry the label of the digit they were cut
from (the shipped classifier agrees with nearly all of them, and merged pairs are left
out); the CLI writes a valid ``.npz`` that ``training.data.load_scene_crops`` reads and
``python -m training --scene-crops`` trains on; bad files give one-line errors.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.metrics import iou
from benchmarks.scene_crops import mine_frame, mine_pairs, pair_label
from benchmarks.scenes import SceneConfig, Truth, render_scene
from training.data import DataError, load_mnist, load_scene_crops
from realtime.readers import PairReadings
from training.pairs import load_scene_pairs


def _cli(repo_root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=repo_root, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


@pytest.fixture(scope="module")
def mnist_train(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y = load_mnist("train", mnist_dir)
    return x.numpy(), y.numpy()


def test_mined_crops_carry_the_label_of_their_digit(recognizer, mnist_train) -> None:
    images, labels, n_truths = [], [], 0
    for seed in range(3):
        frame, truths, _ = render_scene(seed, SceneConfig(touching_prob=0.5, group_prob=0.9), mnist_train)
        im, lb, neg = mine_frame(recognizer, frame, truths)
        assert neg.dtype == np.uint8 and neg.shape[1:] == (28, 28)
        assert im.dtype == np.uint8 and im.shape[1:] == (28, 28) and len(im) == len(lb)
        assert set(lb.tolist()) <= {t.label for t in truths}
        images.append(im), labels.append(lb)
        n_truths += len(truths)
    im, lb = np.concatenate(images), np.concatenate(labels)
    assert len(im) >= 0.7 * n_truths, (len(im), n_truths)
    read = np.array([d for d, _ in recognizer.classify([255 - x for x in im])])
    agree = float(np.mean(read == lb))
    assert agree >= 0.9, f"the classifier agrees with {agree:.1%} of the mined labels"


def test_a_merged_pair_is_not_labelled_as_one_digit(recognizer, mnist_train) -> None:
    """A blob holding two touching digits overlaps each of them by IoU < 0.75: it must
    not come back as a labelled crop (it would teach the net to read pairs as digits)."""
    frame, truths, _ = render_scene(5, SceneConfig.clean(touching_prob=1.0, group_prob=1.0), mnist_train)
    page = recognizer.page(frame)
    ink, cands = page.ink, page.blobs
    pairs = [c for c in cands if sum(iou(c.box, t.box) > 0.2 for t in truths) >= 2]
    assert pairs, "the scene should hold touching pairs"
    im, _, neg = mine_frame(recognizer, frame, truths)
    whole = {tuple(np.clip(recognizer.digit_reader.fields(ink, [c])[0] * 255 + 0.5, 0, 255).astype(np.uint8).ravel())
             for c in pairs}
    assert not any(tuple(x.ravel()) in whole for x in im)
    # a blob holding most of two digits is kept as a "not a digit" example instead
    assert any(tuple(x.ravel()) in whole for x in neg)


def test_cli_writes_crops_that_training_uses(mnist_dir: Path, repo_root: Path, tmp_path: Path) -> None:
    npz = tmp_path / "crops.npz"
    proc = _cli(repo_root, "benchmarks.scene_crops", "--out", str(npz), "--frames", "6", "--workers", "1",
                "--data-dir", str(mnist_dir))
    assert proc.returncode == 0, proc.stderr[-2000:]
    images, labels, negatives = load_scene_crops(npz)
    assert len(images) >= 60 and images.shape[1:] == (28, 28)
    assert negatives is not None and negatives.dtype == torch.uint8
    assert 0 <= int(labels.min()) and int(labels.max()) <= 9
    assert f"{len(images)} labelled crops" in proc.stdout and f"{len(negatives)} negatives" in proc.stdout

    out = tmp_path / "run"
    proc = _cli(repo_root, "training", "--epochs", "1", "--train-subset", "500", "--test-subset", "200",
                "--scene-crops", str(npz), "--negatives", "0.1", "--out", str(out), "--no-progress", "--threads", "1",
                "--data-dir", str(mnist_dir))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"500 MNIST + {len(images):,} scene-crop train" in proc.stdout
    assert json.loads((out / "settings.json").read_text())["scene_crops"] == str(npz)
    ckpt = torch.load(out / "model.pt", weights_only=True)
    assert ckpt["class_names"][-1] == "not a digit" and len(ckpt["class_names"]) == 11


def _truncated(path: Path) -> None:
    np.savez_compressed(path, fields=np.zeros((50, 28, 56), np.uint8), left=np.zeros(50), right=np.zeros(50),
                        is_pair=np.zeros(50), ends=np.zeros((50, 2)), is_digits=np.ones(50))
    path.write_bytes(path.read_bytes()[:300])


@pytest.mark.parametrize("load, make, message", [
    (load_scene_crops, None, "does not exist"),
    (load_scene_crops, lambda p: p.write_bytes(b"not a zip"), "not a scene-crops .npz"),
    (load_scene_crops, lambda p: np.savez(p, images=np.zeros((3, 28, 28), np.float32), labels=np.zeros(3)),
     "must be uint8"),
    (load_scene_crops, lambda p: np.savez(p, images=np.zeros((3, 28, 28), np.uint8), labels=np.array([0, 1, 12])),
     "labels outside"),
    (load_scene_crops, lambda p: np.savez(p, images=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(3, np.int64),
                                          negatives=np.zeros((2, 14, 14), np.uint8)), "negatives must be"),
    (load_scene_pairs, None, "does not exist"),
    (load_scene_pairs, lambda p: p.write_bytes(b"not a zip"), "not a scene-pairs .npz"),
    (load_scene_pairs, _truncated, "not a scene-pairs .npz"),
    (load_scene_pairs, lambda p: np.savez(p, fields=np.zeros((2, 28, 28), np.uint8), left=np.zeros(2),
                                          right=np.zeros(2), is_pair=np.zeros(2), ends=np.zeros((2, 2)),
                                          is_digits=np.ones(2)), "28, 56"),
    (load_scene_pairs, lambda p: np.savez(p, fields=np.zeros((2, 28, 56), np.uint8), left=np.array([3, 11]),
                                          right=np.zeros(2), is_pair=np.ones(2), ends=np.zeros((2, 2)),
                                          is_digits=np.ones(2)), "outside"),
])
def test_bad_mined_file_is_a_clear_error(tmp_path: Path, load, make, message: str) -> None:
    path = tmp_path / "mined.npz"
    if make is not None:
        make(path)
    with pytest.raises(DataError, match=message):
        load(path)


def test_training_cli_with_missing_scene_crops_is_one_error_line(mnist_dir: Path, repo_root: Path,
                                                                 tmp_path: Path) -> None:
    proc = _cli(repo_root, "training", "--epochs", "1", "--train-subset", "200", "--scene-crops",
                str(tmp_path / "nope.npz"), "--out", str(tmp_path / "run"), "--no-progress",
                "--data-dir", str(mnist_dir))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "nope.npz" in lines[0], proc.stderr


def test_cli_lattice_settings_change_what_is_mined(mnist_dir: Path, repo_root: Path, tmp_path: Path) -> None:
    """The miner's lattice flags reach the segmentation: with lattices only from aspect
    3.0 (almost never) fewer pieces and pairs are mined."""
    counts = {}
    for name, extra in (("live", []), ("rare", ["--lattice-from", "3.0", "--part-min-height", "0.9"])):
        npz = tmp_path / f"{name}.npz"
        proc = _cli(repo_root, "benchmarks.scene_crops", "--out", str(npz), "--frames", "4", "--workers", "1",
                    "--touching-share", "1.0", "--data-dir", str(mnist_dir), *extra)
        assert proc.returncode == 0, proc.stderr[-2000:]
        counts[name] = len(load_scene_crops(npz)[2])
    assert counts["rare"] < counts["live"], counts


def _digit(x: int, w: int, label: int, y: int = 100, h: int = 40) -> Truth:
    return Truth(box=(x, y, w, h), label=label, mnist_index=0, number_id=0)


def test_pair_label_is_a_pair_only_for_two_whole_digits() -> None:
    # three touching digits 40 px tall, each overlapping the next by 5 px
    row = [_digit(100, 30, 4), _digit(125, 30, 7), _digit(150, 30, 1), _digit(100, 30, 9, y=300)]
    # two whole digits (and the digit of another row below): a pair, ends where they end
    left, right, is_pair, end, start = pair_label((100, 95, 55, 50), row)
    assert (left, right, is_pair) == (4, 7, 1)
    assert end == pytest.approx(30 / 55) and start == pytest.approx(25 / 55)
    # a cut anywhere in the overlap with the third digit still leaves the pair
    assert pair_label((100, 95, 50, 50), row)[2] == 1
    assert pair_label((100, 95, 58, 50), row)[2] == 1
    assert pair_label((125, 95, 55, 50), row)[:3] == (7, 1, 1)
    # three digits, or one: no pair
    assert pair_label((100, 95, 80, 50), row)[:3] == (-1, -1, 0)
    assert pair_label((125, 95, 30, 50), row)[:3] == (-1, -1, 0)
    # a pair and a third of the next digit: left out, as is a stretch over no digit
    assert pair_label((100, 95, 65, 50), row)[0] == -2
    assert pair_label((400, 95, 60, 50), row)[0] == -2


def test_mined_pair_fields_are_what_the_shipped_reader_reads(recognizer, mnist_train) -> None:
    """The stretches mined from touching frames of MNIST training digits hold pairs and
    non-pairs, and the shipped pair reader (trained on composed crops only) agrees with
    most of the labels: they describe the stretches, not noise."""
    fields, left, right, is_pair, ends, is_digits = [], [], [], [], [], []
    for seed in range(4):
        frame, truths, _ = render_scene(seed, SceneConfig(touching_prob=1.0, group_prob=1.0), mnist_train)
        f, lft, rgt, p, e, d = mine_pairs(recognizer, frame, truths)
        assert f.dtype == np.uint8 and f.shape[1:] == (28, 56)
        assert len({len(a) for a in (f, lft, rgt, p, e, d)}) == 1
        fields.append(f), left.append(lft), right.append(rgt), is_pair.append(p), ends.append(e)
    f, lft, rgt, p, e = (np.concatenate(a) for a in (fields, left, right, is_pair, ends))
    pos = p > 0.5
    assert 20 <= pos.sum() <= 0.5 * len(p), (int(pos.sum()), len(p))
    assert set(lft[pos].tolist()) <= set(range(10)) and (lft[~pos] == -1).all()
    assert ((e[pos] >= 0) & (e[pos] <= 1)).all()
    # the left digit ends right of where the right one starts (they touch), mostly
    assert np.mean(e[pos, 0] > e[pos, 1]) >= 0.8 and 0.3 < float(np.median(e[pos, 0])) < 0.8
    if recognizer.pair_backend is None:
        pytest.skip("no assets/pairs.pt")
    reader = recognizer.pair_reader
    read = PairReadings.from_logits(reader.backend(reader.net.inputs(f.astype(np.float32) / 255)))
    l_probs, r_probs, said = read.left, read.right, read.pair > 0.5
    assert np.mean(said == pos) >= 0.75, np.mean(said == pos)
    both = (l_probs[pos].argmax(1) == lft[pos]) & (r_probs[pos].argmax(1) == rgt[pos])
    assert both.mean() >= 0.7, both.mean()


def test_pairs_cli_mines_what_pair_training_fine_tunes_on(mnist_dir: Path, repo_root: Path, tmp_path: Path) -> None:
    npz = tmp_path / "pairs.npz"
    proc = _cli(repo_root, "benchmarks.scene_crops", "--pairs", "--out", str(npz), "--frames", "4", "--workers", "1",
                "--touching-share", "1.0", "--data-dir", str(mnist_dir))
    assert proc.returncode == 0, proc.stderr[-2000:]
    fields, left, right, is_pair, ends, is_digits = load_scene_pairs(npz)
    assert len(fields) >= 100 and 0 < is_pair.sum() < len(fields)
    assert f"{len(fields)} pair-reader inputs ({int(is_pair.sum())} pairs" in proc.stdout

    start = tmp_path / "start"
    base = ["training.pairs", "--data-dir", str(mnist_dir), "--epochs", "1", "--workers", "1", "--widths", "4", "8", "8",
            "--held-out", "200"]
    proc = _cli(repo_root, *base, "--samples", "300", "--out", str(start))
    assert proc.returncode == 0, proc.stderr[-2000:]
    tuned = tmp_path / "tuned"
    proc = _cli(repo_root, *base, "--samples", "200", "--init", str(start / "model.pt"), "--scene-pairs", str(npz),
                "--lr", "1e-9", "--out", str(tuned))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"+ {len(fields)} scene crops" in proc.stdout
    first = torch.load(start / "model.pt", weights_only=True)["state_dict"]
    after = torch.load(tuned / "model.pt", weights_only=True)["state_dict"]
    # started from the given weights: a vanishing learning rate leaves them where they were
    for k, v in first.items():
        if v.dtype.is_floating_point and "running" not in k:
            assert torch.allclose(v, after[k], atol=1e-5), k
    with open(tuned / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and "pair_read" in rows[-1]

    # a digit network is no pair reader to start from, and a missing .npz is no data
    for bad, needle in ((["--init", str(repo_root / "assets" / "digits.pt")], "--init"),
                        (["--scene-pairs", str(tmp_path / "nope.npz")], "nope.npz")):
        proc = _cli(repo_root, *base, "--samples", "200", *bad, "--out", str(tmp_path / "bad"))
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], \
            proc.stderr[-2000:]
