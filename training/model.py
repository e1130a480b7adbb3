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

from training import fields


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
        if isinstance(d.get("widths"), (list, tuple)):
            d["widths"] = tuple(d["widths"])
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
    """Input: normalized [N, 1, 28, 28] float; output: class logits [N, num_classes]
    (the ten digits, and "not a digit" when trained with negatives)."""

    ARCH = "digitnet"
    KIND = "digits"  # what checkpoints, graphs and loaders call this network
    CLASS_COUNTS: tuple[int, ...] | None = None  # any count: the class names say what each is

    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        _check_config(config, self.ARCH, self.CLASS_COUNTS)
        a, b, c = config.widths
        self.config = config
        self.features = _stages(a, b, c)
        self.pool, self.head = self._pool_and_head(c, config.num_classes)

    @classmethod
    def input_shape(cls, config: ModelConfig) -> tuple[int, int]:
        """The (height, width) of one input field."""
        return config.input_size, config.input_size

    @staticmethod
    def _pool_and_head(channels: int, outputs: int) -> tuple[nn.Module, nn.Module]:
        return nn.AdaptiveAvgPool2d(1), nn.Linear(channels, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


class PairNet(DigitNet):
    """Two touching digits: input [N, 1, 28, PAIR_WIDTH] (``training.fields.wide_field``);
    output [N, PAIR_OUTPUTS.size], laid out as :data:`OUTPUTS` says: the left digit's 10
    logits, the right digit's 10, a "this is a pair" logit, two split logits and a
    "these are digits" logit (readers trained before that last one have
    ``PAIR_OUTPUTS.legacy_size`` outputs). The same three stages as :class:`DigitNet`,
    but the features are pooled into 7 columns, not one, because the heads must know
    which digit is on which side."""

    ARCH = "pairnet"
    KIND = "pairs"
    OUTPUTS = fields.PAIR_OUTPUTS  # where each answer sits in the output vector
    CLASS_COUNTS = (fields.PAIR_OUTPUTS.size, fields.PAIR_OUTPUTS.legacy_size)

    @classmethod
    def input_shape(cls, config: ModelConfig) -> tuple[int, int]:
        return config.input_size, fields.PAIR_WIDTH

    @staticmethod
    def _pool_and_head(channels: int, outputs: int) -> tuple[nn.Module, nn.Module]:
        return nn.AdaptiveAvgPool2d((1, 7)), nn.Sequential(
            nn.Linear(7 * channels, 128), nn.ReLU(inplace=True), nn.Linear(128, outputs))


class SeqNet(nn.Module):
    """A whole touching number read left to right: input [N, 1, 28, NUMBER_WIDTH]
    (``training.fields.wide_field``); output [N, NUMBER_WIDTH / 4, 11]: per column of 4
    px, the 10 digits' logits and CTC's blank (``fields.NUMBER_BLANK``). The same three conv stages,
    each column's 7 rows folded into one vector, then a bidirectional LSTM, so each
    column's answer knows the whole number: a convolution-only reader, whose columns see
    about one digit, learned to emit the first digit blindly at the left edge."""

    ARCH = "seqnet"
    KIND = "numbers"
    HIDDEN = 128
    WIDTH = fields.NUMBER_WIDTH  # input columns
    BLANK = fields.NUMBER_BLANK  # CTC's "no new digit here" class
    CLASS_COUNTS = (fields.NUMBER_BLANK + 1,)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        _check_config(config, self.ARCH, self.CLASS_COUNTS)
        a, b, c = config.widths
        self.config = config
        self.features = _stages(a, b, c)
        self.col = nn.Sequential(nn.Conv2d(c, self.HIDDEN, (config.input_size // 4, 1)),
                                 nn.BatchNorm2d(self.HIDDEN), nn.ReLU(inplace=True))
        self.rnn = nn.LSTM(self.HIDDEN, self.HIDDEN // 2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(self.HIDDEN, config.num_classes)

    @classmethod
    def input_shape(cls, config: ModelConfig) -> tuple[int, int]:
        return config.input_size, cls.WIDTH

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.col(self.features(x)).squeeze(2).transpose(1, 2)
        return self.head(self.rnn(z)[0])


def check_config(config: ModelConfig) -> None:
    """ValueError unless ``config`` builds one of :data:`NETWORKS`."""
    net = network_class(config)
    _check_config(config, net.ARCH, net.CLASS_COUNTS)


def _check_config(config: ModelConfig, arch: str, class_counts: tuple[int, ...] | None) -> None:
    """ValueError unless ``config`` builds this network: its architecture, positive
    widths, an output count its layout knows (``None``: at least two)."""
    if config.arch != arch:
        raise ValueError(f"unknown architecture {config.arch!r}")
    if not isinstance(config.widths, tuple):
        raise ValueError(f"widths must be three channel counts, not {config.widths!r}")
    if len(config.widths) != 3 or any(not isinstance(w, int) or w < 1 for w in config.widths):
        raise ValueError(f"widths must be three positive channel counts, not {list(config.widths)}")
    if not isinstance(config.num_classes, int) or isinstance(config.num_classes, bool):
        raise ValueError(f"num_classes must be an integer, not {config.num_classes!r}")
    if class_counts is None and config.num_classes < 2:
        raise ValueError(f"a {arch} needs at least 2 outputs, not {config.num_classes}")
    if class_counts is not None and config.num_classes not in class_counts:
        raise ValueError(f"a {arch} has {' or '.join(map(str, class_counts))} outputs, not {config.num_classes}")
    if config.input_size != fields.SIZE:
        raise ValueError(f"input_size must be {fields.SIZE} (MNIST's field), not {config.input_size}")


NETWORKS: dict[str, type[nn.Module]] = {net.ARCH: net for net in (DigitNet, PairNet, SeqNet)}
KINDS = {arch: net.KIND for arch, net in NETWORKS.items()}  # architecture -> kind


def network_class(config: ModelConfig) -> type[nn.Module]:
    """The network class a config builds (ValueError for an unknown architecture)."""
    try:
        return NETWORKS[config.arch]
    except KeyError:
        raise ValueError(f"unknown architecture {config.arch!r}") from None


def build_model(config: ModelConfig) -> nn.Module:
    return network_class(config)(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: int | None = None) -> int:
    """Multiply-accumulates for one input (convs and linear layers; BN/ReLU/pool/LSTM
    ignored), of the network's own input shape unless ``input_size`` (square) is given."""
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
            shape = (input_size, input_size) if input_size else type(model).input_shape(model.config)
            model(torch.zeros(1, 1, *shape, device=next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


__all__ = ["ModelConfig", "DigitNet", "PairNet", "SeqNet", "NETWORKS", "KINDS", "network_class", "check_config",
           "build_model",
           "count_parameters", "count_macs"]
