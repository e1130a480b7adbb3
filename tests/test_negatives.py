"""Generated "not a digit" examples and the optional 11th class they train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from training.checkpoint import load_checkpoint
from training.data import load_mnist
from training.negatives import NOT_A_DIGIT, make_negatives
from training.train import TrainSettings, run_training


def test_negatives_look_like_mnist_crops(mnist_dir: Path) -> None:
    x, _ = load_mnist("train", mnist_dir)
    neg = make_negatives(400, x[:2000], seed=3)
    assert neg.shape == (400, 28, 28) and neg.dtype == torch.uint8
    assert torch.equal(neg, make_negatives(400, x[:2000], seed=3))  # deterministic
    assert not torch.equal(neg, make_negatives(400, x[:2000], seed=4))
    a = neg.float() / 255
    # MNIST-style: ink peaks at white, background black, the ink box 20 px on its longer side
    assert float(a.amax(dim=(1, 2)).min()) > 0.9
    # centring by centre of mass may push a lopsided mark's box to the edge, as in MNIST; rarely
    edge = (a[:, :2, :].amax(dim=(1, 2)) > 0.05) | (a[:, -2:, :].amax(dim=(1, 2)) > 0.05)
    assert float(edge.float().mean()) < 0.1
    ys = (a > 0.1).any(dim=2)
    xs = (a > 0.1).any(dim=1)
    longer = torch.maximum(ys.sum(1), xs.sum(1)).float()
    assert 18 <= float(longer.median()) <= 22
    # centred by centre of mass, as MNIST is
    r = torch.arange(28).float()
    cy = (a.sum(2) * r).sum(1) / a.sum((1, 2))
    cx = (a.sum(1) * r).sum(1) / a.sum((1, 2))
    assert float((cy - 13.5).abs().mean()) < 1.5 and float((cx - 13.5).abs().mean()) < 1.5


def test_training_with_negatives_gives_an_11_class_checkpoint(tmp_path: Path, mnist_dir: Path) -> None:
    threads = torch.get_num_threads()
    try:
        final = run_training(TrainSettings(data_dir=str(mnist_dir), out=str(tmp_path), epochs=1, batch_size=64,
                                           train_subset=8000, test_subset=500, negatives=0.15, threads=1,
                                           progress=False), log_line=lambda s: None)
    finally:
        torch.set_num_threads(threads)
    assert final["class_names"][-1] == NOT_A_DIGIT and len(final["class_names"]) == 11
    model, ckpt = load_checkpoint(tmp_path / "model.pt")
    assert model.config.num_classes == 11
    # it learned the new class: generated negatives it never saw are mostly called so
    neg = make_negatives(300, load_mnist("train", mnist_dir)[0][:3000], seed=99)
    with torch.inference_mode():
        logits = model((neg.float().div(255).unsqueeze(1) - 0.1307) / 0.3081)
    assert float((logits.argmax(1) == 10).float().mean()) > 0.6
    assert final["metrics"]["test_accuracy"] > 0.85  # and digits are still digits
