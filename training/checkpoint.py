"""The one checkpoint format: save atomically, load with ``weights_only`` and validate.

A checkpoint is a dict of plain values and tensors, never pickled modules::

    {"format": "realtime-digits", "format_version": 1,
     "model_config": {...}, "state_dict": {...},
     "normalization": {"mean": .., "std": .., "size": 28, "box": 20},
     "class_names": ["0", ..., "9"], "metrics": {...}, "settings": {...},
     "calibration": uint8 tensor [N, 28, 28],  # optional: training images for int8 inference
                                               # ([N, 28, 56] pair fields for the pair reader)
     "training_state": {...}}   # only in resumable checkpoints

The normalization constants live here and only here: the live recognizer reads them
from the checkpoint so training and inference can never disagree.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.errors import CheckpointError
from training.model import ModelConfig, PairNet, SeqNet, build_model, network_class

FORMAT = "realtime-digits"
FORMAT_VERSION = 1

# MNIST's pixel statistics and geometry (the 20x20 ink box centred in 28x28).
MNIST_NORMALIZATION: dict[str, float | int] = {"mean": 0.1307, "std": 0.3081, "size": 28, "box": 20}
CLASS_NAMES = [str(d) for d in range(10)]
# training images stored with the weights so inference can calibrate int8 ranges offline
CALIBRATION_IMAGES = 256


def calibration_images(images: torch.Tensor, n: int = CALIBRATION_IMAGES, seed: int = 0) -> torch.Tensor:
    """A fixed random sample of ``n`` training images (uint8 [n, 28, 28])."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(images), generator=g)[:n]
    return images[idx].to(torch.uint8).clone()


def is_pair_reader(ckpt: dict[str, Any]) -> bool:
    """Whether a checkpoint holds the pair reader, not a digit network."""
    config = ckpt.get("model_config")
    return isinstance(config, dict) and config.get("arch") == PairNet.ARCH


def is_number_reader(ckpt: dict[str, Any]) -> bool:
    """Whether a checkpoint holds the number reader."""
    config = ckpt.get("model_config")
    return isinstance(config, dict) and config.get("arch") == SeqNet.ARCH


def make_checkpoint(
    model: nn.Module,
    *,
    metrics: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    training_state: dict[str, Any] | None = None,
    normalization: dict[str, float | int] | None = None,
    class_names: list[str] | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
    calibration: torch.Tensor | None = None,
) -> dict[str, Any]:
    ckpt: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in (state_dict or model.state_dict()).items()},
        "normalization": dict(normalization or MNIST_NORMALIZATION),
        "class_names": list(class_names or CLASS_NAMES),
        "metrics": dict(metrics or {}),
        "settings": dict(settings or {}),
    }
    if calibration is not None:
        ckpt["calibration"] = calibration.to(torch.uint8).cpu().clone()
    if training_state is not None:
        ckpt["training_state"] = training_state
    return ckpt


def save_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``ckpt`` to ``path`` atomically: a temp file in the same folder, then rename.

    A crash or Ctrl-C mid-write leaves the previous file intact, never a torn one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(ckpt, f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); a checkpoint is an ordinary file
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate the dict (no model built). Raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    # torch.save writes a zip archive; anything else is corrupt, truncated or foreign
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt, truncated or not a PyTorch file)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for bad files
        if "weights only" in str(err).lower() or "weights_only" in str(err):
            reason = "it holds pickled Python objects, which are never loaded"
        else:
            reason = f"corrupt archive: {type(err).__name__}"
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} checkpoint")
    version = ckpt.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version}, this code reads version {FORMAT_VERSION}"
        )
    for key in ("model_config", "state_dict", "normalization", "class_names"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
    calib = ckpt.get("calibration")
    if calib is not None:
        # the pair reader's inputs are two fields wide, the number reader's a whole number
        shape = input_shape(ckpt)
        if not (isinstance(calib, torch.Tensor) and calib.dtype == torch.uint8 and calib.ndim == 3
                and tuple(calib.shape[1:]) == shape and len(calib) > 0):
            raise CheckpointError(f"{path}: calibration images must be uint8 [N, {shape[0]}, {shape[1]}]")
    return ckpt


def input_shape(ckpt: dict[str, Any]) -> tuple[int, int]:
    """The (height, width) of the checkpoint's network's input field."""
    try:
        config = ModelConfig.from_dict(ckpt["model_config"])
        return network_class(config).input_shape(config)
    except (TypeError, ValueError, KeyError):
        size = int(ckpt["normalization"].get("size", 28))
        return size, size


def model_from_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike = "<checkpoint>") -> nn.Module:
    """Rebuild the network from the stored config and weights (eval mode)."""
    try:
        config = ModelConfig.from_dict(ckpt["model_config"])
        model = build_model(config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: model config does not match this code ({err})") from err
    if len(ckpt["class_names"]) != config.num_classes:
        raise CheckpointError(f"{path}: {len(ckpt['class_names'])} class names for {config.num_classes} outputs")
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = " ".join(s.strip() for s in first[:2])[:160]
        raise CheckpointError(f"{path}: weights do not match the architecture ({detail})") from err
    model.eval()
    return model


def load_checkpoint(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, checkpoint dict)`` for a checkpoint file, validated."""
    ckpt = read_checkpoint(path)
    return model_from_checkpoint(ckpt, path), ckpt
