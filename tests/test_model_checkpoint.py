"""Tests for training.model and training.checkpoint.

Covers: ModelConfig's dict round trip and its rejection of unknown keys/architectures;
DigitNet's [N, 10] logits; the documented size (70,330 parameters, about 5.5 M MACs,
checked against a hand count from the widths); checkpoint round trip with identical
outputs, loaded through ``torch.load(weights_only=True)``; atomic saves (no temp files,
an existing file replaced, a failed write leaves the old file intact); and
CheckpointError with a clear message for every kind of bad file: missing, random bytes,
plain text, a foreign torch file, a wrong format version, weights that do not match
the stored config, and pickled nn.Module objects (refused by weights_only).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import training.checkpoint as checkpoint_mod
from training.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    make_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from training.model import DigitNet, ModelConfig, build_model, count_macs, count_parameters


@functools.lru_cache(maxsize=None)
def _cached_model(widths: tuple[int, int, int]) -> DigitNet:
    torch.manual_seed(0)
    model = build_model(ModelConfig(widths=widths))
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 1, 28, 28) * 2 + 0.5)
    return model.eval()


def _trained_like_model(widths: tuple[int, int, int] = (16, 32, 64)) -> DigitNet:
    """A model with non-default BN statistics, so a lost buffer would show in outputs."""
    return copy.deepcopy(_cached_model(widths))


def _expected_macs(widths: tuple[int, int, int], classes: int = 10) -> int:
    a, b, c = widths
    k = 9  # 3x3 convs
    return (28 * 28 * a * 1 * k + 14 * 14 * (b * a + b * b) * k + 7 * 7 * (c * b + c * c) * k + c * classes)


# ---- model ------------------------------------------------------------------------------


def test_model_config_round_trip() -> None:
    cfg = ModelConfig(widths=(8, 24, 40), num_classes=10)
    d = cfg.to_dict()
    assert d["widths"] == [8, 24, 40]  # plain list: storable under weights_only
    back = ModelConfig.from_dict(d)
    assert back == cfg
    assert isinstance(back.widths, tuple)
    assert ModelConfig.from_dict(ModelConfig().to_dict()) == ModelConfig()


def test_model_config_rejects_unknown_keys_and_arch() -> None:
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "dropout": 0.5})
    with pytest.raises(ValueError, match="unknown architecture"):
        DigitNet(ModelConfig(arch="resnet"))


def test_model_outputs_logits_per_class() -> None:
    model = _trained_like_model()
    for n in (1, 7):
        out = model(torch.randn(n, 1, 28, 28))
        assert out.shape == (n, 10)
        assert torch.isfinite(out).all()
    small = build_model(ModelConfig(widths=(4, 8, 8), num_classes=3)).eval()
    assert small(torch.randn(2, 1, 28, 28)).shape == (2, 3)


def test_documented_size_of_default_model() -> None:
    model = build_model(ModelConfig())
    assert count_parameters(model) == 70_330
    macs = count_macs(model)
    assert macs == _expected_macs((16, 32, 64))
    assert abs(macs - 5.5e6) / 5.5e6 < 0.02
    # the counter follows the widths, and leaves the model's mode alone
    other = build_model(ModelConfig(widths=(8, 16, 32)))
    other.train()
    assert count_macs(other) == _expected_macs((8, 16, 32))
    assert other.training


# ---- checkpoint round trip and atomic saves ------------------------------------------------


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _trained_like_model()
    path = tmp_path / "ckpt" / "digits.pt"  # parent folder is created
    save_checkpoint(make_checkpoint(model, metrics={"test_accuracy": 0.5}, settings={"epochs": 3}), path)

    calls: list[dict] = []
    real_load = torch.load

    def spy_load(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(checkpoint_mod.torch, "load", spy_load)
    loaded, ckpt = load_checkpoint(path)
    monkeypatch.undo()

    assert calls and all(c.get("weights_only") is True for c in calls)
    assert not loaded.training
    assert loaded.config == model.config
    x = torch.randn(32, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))
    assert ckpt["metrics"] == {"test_accuracy": 0.5}
    assert ckpt["settings"] == {"epochs": 3}
    assert ckpt["normalization"]["mean"] == pytest.approx(0.1307)
    assert ckpt["class_names"] == [str(d) for d in range(10)]
    # the file is plain data: torch's own safe loader reads it too
    assert isinstance(torch.load(path, weights_only=True), dict)


def test_save_is_atomic_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    path.write_text("an older file\n")
    model = _trained_like_model()
    save_checkpoint(make_checkpoint(model), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    load_checkpoint(path)  # the old text is gone
    other = _trained_like_model(widths=(8, 16, 32))
    save_checkpoint(make_checkpoint(other), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert load_checkpoint(path)[0].config.widths == (8, 16, 32)


def test_failed_save_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(make_checkpoint(_trained_like_model()), path)
    before = path.read_bytes()

    def torn_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # Ctrl-C mid-write

    monkeypatch.setattr(checkpoint_mod.torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(make_checkpoint(_trained_like_model(widths=(8, 16, 32))), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert load_checkpoint(path)[0].config.widths == (16, 32, 64)


# ---- rejections ------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="not found") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), id="random-bytes"),
        pytest.param(b"this is a note, not a checkpoint\n" * 10, id="plain-text"),
        pytest.param(b"", id="empty"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "digits.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_foreign_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"a": 1}, path)
    with pytest.raises(CheckpointError, match="not a realtime-digits checkpoint") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    # a bare state_dict (a common mistake) is foreign too
    torch.save(_trained_like_model().state_dict(), path)
    with pytest.raises(CheckpointError, match="not a realtime-digits checkpoint"):
        load_checkpoint(path)


def test_wrong_format_version(tmp_path: Path) -> None:
    path = tmp_path / "future.pt"
    ckpt = make_checkpoint(_trained_like_model())
    ckpt["format_version"] = FORMAT_VERSION + 1
    save_checkpoint(ckpt, path)
    with pytest.raises(CheckpointError, match=f"version {FORMAT_VERSION + 1}") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_missing_key(tmp_path: Path) -> None:
    path = tmp_path / "partial.pt"
    ckpt = make_checkpoint(_trained_like_model())
    del ckpt["normalization"]
    save_checkpoint(ckpt, path)
    with pytest.raises(CheckpointError, match="lacks 'normalization'"):
        load_checkpoint(path)


def test_state_dict_does_not_match_config(tmp_path: Path) -> None:
    path = tmp_path / "mismatch.pt"
    ckpt = make_checkpoint(_trained_like_model())
    ckpt["model_config"]["widths"] = [8, 16, 32]
    save_checkpoint(ckpt, path)
    read_checkpoint(path)  # the dict itself is well-formed ...
    with pytest.raises(CheckpointError, match="weights do not match the architecture") as info:
        load_checkpoint(path)  # ... but the weights cannot fill that net
    assert str(path) in str(info.value)


def test_unknown_config_key(tmp_path: Path) -> None:
    path = tmp_path / "newer.pt"
    ckpt = make_checkpoint(_trained_like_model())
    ckpt["model_config"]["attention"] = True
    save_checkpoint(ckpt, path)
    with pytest.raises(CheckpointError, match="model config does not match"):
        load_checkpoint(path)


def test_pickled_module_is_refused(tmp_path: Path) -> None:
    model = _trained_like_model()
    whole = tmp_path / "whole_model.pt"
    torch.save(model, whole)  # a full pickle: would run arbitrary code on load
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as info:
        load_checkpoint(whole)
    assert str(whole) in str(info.value)

    inside = tmp_path / "module_inside.pt"
    ckpt = make_checkpoint(model)
    ckpt["extra"] = nn.Linear(2, 2)  # our format, but carrying a pickled object
    torch.save(ckpt, inside)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(inside)


@pytest.mark.parametrize("arch,classes,width", [("pairnet", 24, 56), ("seqnet", 11, 128)])
def test_reader_calibration_must_be_the_readers_own_fields(tmp_path: Path, arch: str, classes: int,
                                                           width: int) -> None:
    """A reader's calibration images are as wide as its input (two fields for the pair
    reader, a whole number for the number reader); others are refused at load with a
    one-line error (they would quantize a graph of another shape)."""
    model = build_model(ModelConfig(arch=arch, widths=(4, 8, 8), num_classes=classes))
    assert type(model).input_shape(model.config) == (28, width)
    names = [str(i) for i in range(classes)]
    ckpt = make_checkpoint(model, class_names=names, calibration=torch.zeros(4, 28, 28, dtype=torch.uint8))
    with pytest.raises(CheckpointError, match=rf"uint8 \[N, 28, {width}\]"):
        load_checkpoint(save_checkpoint(ckpt, tmp_path / "bad.pt"))
    ckpt["calibration"] = torch.zeros(4, 28, width, dtype=torch.uint8)
    load_checkpoint(save_checkpoint(ckpt, tmp_path / "good.pt"))


def test_networks_declare_their_input_and_output_layout() -> None:
    from training import fields
    from training.model import PairNet, SeqNet

    pair = build_model(ModelConfig(arch="pairnet", widths=(4, 8, 8), num_classes=fields.PAIR_OUTPUTS.size))
    out = pair(torch.zeros(2, 1, *PairNet.input_shape(pair.config)))
    assert out.shape == (2, fields.PAIR_OUTPUTS.size) and PairNet.OUTPUTS is fields.PAIR_OUTPUTS
    seq = build_model(ModelConfig(arch="seqnet", widths=(4, 8, 8), num_classes=fields.NUMBER_BLANK + 1))
    out = seq(torch.zeros(2, 1, 28, fields.NUMBER_WIDTH))
    assert out.shape == (2, fields.NUMBER_WIDTH // 4, fields.NUMBER_BLANK + 1) and SeqNet.WIDTH == fields.NUMBER_WIDTH
    for config in (ModelConfig(arch="pairnet", num_classes=10), ModelConfig(arch="seqnet", num_classes=10),
                   ModelConfig(num_classes=1), ModelConfig(widths=(0, 8, 8))):
        with pytest.raises(ValueError):
            build_model(config)
