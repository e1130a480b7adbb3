"""The digit CNN and its config; rebuilt by ``realtime`` from a checkpoint's config alone.

The net is sized for accuracy per CPU second: three stages at 28, 14 and 7 px, batch
norm after every 3x3 conv, global average pooling and one linear layer. Most MACs sit
at 14x14 and 7x7, where they buy the most; the default (16, 32, 64) widths cost 5.5 M
MACs and 70 k parameters per image, so a frame's 30 crops classify in about a
millisecond on one CPU core.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network (stored in every checkpoint)."""

    arch: str = "digitnet"
    widths: tuple[int, int, int] = (16, 32, 64)
    num_classes: int = 10
    input_size: int = 28

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        d = dict(d)
        if "widths" in d:
            d["widths"] = tuple(int(w) for w in d["widths"])
        return cls(**d)


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    # bias is redundant before batch norm
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _stages(a: int, b: int, c: int) -> nn.Sequential:
    """The three conv stages both networks share: full, half and quarter resolution."""
    return nn.Sequential(
        *_conv_bn_relu(1, a),
        nn.MaxPool2d(2),
        *_conv_bn_relu(a, b),
        *_conv_bn_relu(b, b),
        nn.MaxPool2d(2),
        *_conv_bn_relu(b, c),
        *_conv_bn_relu(c, c),
    )


class DigitNet(nn.Module):
    """Input: normalized [N, 1, 28, 28] float; output: class logits [N, num_classes]."""

    ARCH = "digitnet"

    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        if config.arch != self.ARCH:
            raise ValueError(f"unknown architecture {config.arch!r}")
        a, b, c = config.widths
        self.config = config
        self.features = _stages(a, b, c)
        self.pool, self.head = self._pool_and_head(c, config.num_classes)

    @staticmethod
    def _pool_and_head(channels: int, outputs: int) -> tuple[nn.Module, nn.Module]:
        return nn.AdaptiveAvgPool2d(1), nn.Linear(channels, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


class PairNet(DigitNet):
    """Two touching digits: input [N, 1, 28, 56] (``realtime.pairs.pair_field``); output
    [N, 23]: the left digit's 10 logits, the right digit's 10, a "this is a pair" logit
    and two split logits (see ``realtime.pairs``). The same three stages as
    :class:`DigitNet`, but the features are pooled into 7 columns, not one, because the
    heads must know which digit is on which side."""

    ARCH = "pairnet"

    @staticmethod
    def _pool_and_head(channels: int, outputs: int) -> tuple[nn.Module, nn.Module]:
        return nn.AdaptiveAvgPool2d((1, 7)), nn.Sequential(
            nn.Linear(7 * channels, 128), nn.ReLU(inplace=True), nn.Linear(128, outputs))


class SeqNet(nn.Module):
    """A whole touching number read left to right: input [N, 1, 28, 128]
    (``realtime.sequences.sequence_field``); output [N, 32, 11]: per column of 4 px, the
    10 digits' logits and CTC's blank (``num_classes`` - 1). The same three conv stages,
    each column's 7 rows folded into one vector, then a bidirectional LSTM, so each
    column's answer knows the whole number: a convolution-only reader, whose columns see
    about one digit, learned to emit the first digit blindly at the left edge."""

    ARCH = "seqnet"
    HIDDEN = 128
    WIDTH = 128  # input columns: five MNIST-shaped digits side by side, the longest touching run rendered

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.arch != self.ARCH:
            raise ValueError(f"unknown architecture {config.arch!r}")
        a, b, c = config.widths
        self.config = config
        self.features = _stages(a, b, c)
        self.col = nn.Sequential(nn.Conv2d(c, self.HIDDEN, (config.input_size // 4, 1)),
                                 nn.BatchNorm2d(self.HIDDEN), nn.ReLU(inplace=True))
        self.rnn = nn.LSTM(self.HIDDEN, self.HIDDEN // 2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(self.HIDDEN, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.col(self.features(x)).squeeze(2).transpose(1, 2)
        return self.head(self.rnn(z)[0])


def build_model(config: ModelConfig) -> nn.Module:
    if config.arch == "pairnet":
        return PairNet(config)
    if config.arch == SeqNet.ARCH:
        return SeqNet(config)
    return DigitNet(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: int = 28) -> int:
    """Multiply-accumulates for one image (convs and linear layers; BN/ReLU/pool ignored)."""
    total = 0

    def hook(mod: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total += out[0].numel() * mod.in_channels * k // mod.groups
        elif isinstance(mod, nn.Linear):
            total += mod.in_features * mod.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 1, input_size, input_size))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


__all__ = ["ModelConfig", "DigitNet", "PairNet", "SeqNet", "build_model", "count_parameters", "count_macs"]
