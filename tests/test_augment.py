"""Tests for training.augment on a batch of real MNIST test digits.

Covers: shape, dtype and [0, 1] range are kept; strength 0 is the identity; the same
generator seed gives the same batch (and another seed another one); the input is not
modified; at strength 1 the batch changes but keeps most of its ink and stays centred
(translations are small, and grow with strength); stroke-thickness changes, isolated
from every other effect, both thicken and thin digits.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from training.augment import AugmentConfig, augment
from training.data import load_mnist

N = 512
# Everything off except what a test switches on (geometry-free identity otherwise).
NOTHING = AugmentConfig(
    rotate_deg=0.0, scale=0.0, aspect=0.0, shear=0.0, translate_px=0.0, elastic_px=0.0,
    thickness_p=0.0, blur_p=0.0, contrast_p=0.0, noise_p=0.0,
)


@pytest.fixture(scope="module")
def digits(mnist_dir: Path) -> torch.Tensor:
    """The first N test digits as float [N, 1, 28, 28] in [0, 1]."""
    images, _ = load_mnist("test", mnist_dir)
    return images[:N].float().div(255.0).unsqueeze(1)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ink(x: torch.Tensor) -> torch.Tensor:
    return x.sum(dim=(1, 2, 3))


def _centre_of_mass(x: torch.Tensor) -> torch.Tensor:
    """[N, 2] (row, col) intensity-weighted centre of each image."""
    b = x[:, 0]
    h, w = b.shape[-2:]
    rows = torch.arange(h, dtype=b.dtype).view(1, h, 1)
    cols = torch.arange(w, dtype=b.dtype).view(1, 1, w)
    m = b.sum(dim=(1, 2))
    return torch.stack([(b * rows).sum(dim=(1, 2)) / m, (b * cols).sum(dim=(1, 2)) / m], 1)


def test_shape_dtype_and_range_are_kept(digits: torch.Tensor) -> None:
    for dtype in (torch.float32, torch.float64):
        x = digits[:64].to(dtype)
        out = augment(x, AugmentConfig(), _gen(0))
        assert out.shape == x.shape
        assert out.dtype == dtype
        assert torch.isfinite(out).all()
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_strength_zero_is_identity(digits: torch.Tensor) -> None:
    out = augment(digits, AugmentConfig(strength=0.0), _gen(0))
    assert torch.equal(out, digits)


def test_input_is_not_modified(digits: torch.Tensor) -> None:
    x = digits[:64].clone()
    augment(x, AugmentConfig(), _gen(0))
    assert torch.equal(x, digits[:64])


def test_deterministic_for_a_seed(digits: torch.Tensor) -> None:
    a = augment(digits, AugmentConfig(), _gen(123))
    b = augment(digits, AugmentConfig(), _gen(123))
    c = augment(digits, AugmentConfig(), _gen(124))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert float((a - c).abs().mean()) > 0.02


def test_clean_share_is_left_exactly_as_is(digits: torch.Tensor) -> None:
    cfg = AugmentConfig(strength=1.0)
    out = augment(digits, cfg, _gen(0))
    same = (out == digits).flatten(1).all(dim=1).float().mean()
    assert abs(float(same) - cfg.clean_p) < 0.08, float(same)


def test_changes_digits_but_keeps_their_ink(digits: torch.Tensor) -> None:
    out = augment(digits, AugmentConfig(strength=1.0, clean_p=0.0), _gen(0))
    per_image_change = (out - digits).abs().mean(dim=(1, 2, 3))
    assert float((per_image_change > 0.01).float().mean()) > 0.95  # nearly every digit altered
    assert float(per_image_change.mean()) > 0.05
    # ... yet most of the ink survives: the batch's mean intensity stays in a sane band
    ratio = float(out.mean() / digits.mean())
    assert 0.75 < ratio < 1.4, ratio
    per_image = _ink(out) / _ink(digits)
    assert 0.8 < float(per_image.median()) < 1.3
    assert float((per_image > 0.3).float().mean()) > 0.95  # almost no digit is wiped out


def test_digits_stay_centred(digits: torch.Tensor) -> None:
    out = augment(digits, AugmentConfig(strength=1.0), _gen(0))
    before, after = _centre_of_mass(digits), _centre_of_mass(out)
    shift = (after - before).norm(dim=1)
    assert float(shift.mean()) < 2.5, float(shift.mean())
    assert float(shift.quantile(0.95)) < 4.0, float(shift.quantile(0.95))
    centre = torch.tensor([13.5, 13.5])
    off_centre = (after - centre).norm(dim=1)
    assert float(off_centre.mean()) < 2.5
    assert float(off_centre.quantile(0.99)) < 6.0
    # translations scale with strength
    weak = _centre_of_mass(augment(digits, AugmentConfig(strength=0.25), _gen(0)))
    assert float((weak - before).norm(dim=1).mean()) < float(shift.mean())


def test_geometry_free_config_is_identity(digits: torch.Tensor) -> None:
    """The control for the thickness test: with every effect off only resampling remains."""
    out = augment(digits, NOTHING, _gen(0))
    assert float((out - digits).abs().max()) < 1e-4


def test_thickness_both_grows_and_shrinks_ink(digits: torch.Tensor) -> None:
    cfg = replace(NOTHING, thickness_p=1.0)
    out = augment(digits, cfg, _gen(0))
    ratio = _ink(out) / _ink(digits)
    thicker = float((ratio > 1.1).float().mean())
    thinner = float((ratio < 0.9).float().mean())
    assert thicker > 0.25, thicker
    assert thinner > 0.25, thinner
    # stroke width changes do not move the digit
    shift = (_centre_of_mass(out) - _centre_of_mass(digits)).norm(dim=1)
    assert float(shift.median()) < 0.5
