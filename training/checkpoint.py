"""The one checkpoint format: save atomically, load with ``weights_only`` and validate.

A checkpoint is a dict of plain values and tensors, never pickled modules::

    {"format": "realtime-digits", "format_version": 1,
     "kind": "digits",                # or "pairs", "numbers" (older files: from model_config's arch)
     "model_config": {...}, "state_dict": {...},
     "normalization": {"mean": .., "std": .., "size": 28, "box": 20},
     "class_names": ["0", ..., "9"], "metrics": {...}, "settings": {...},
     "calibration": uint8 tensor [N, 28, 28],  # optional: training images for int8 inference
                                               # ([N, 28, 56] pair fields for the pair reader)
     "training_state": {...}}   # only in resumable checkpoints

The normalization constants live here and only here: the live recognizer reads them
from the checkpoint so training and inference can never disagree.

Loading checks the archive's checksums (a flipped byte in a weight is refused, not read
as a network that calls every digit 7), the whole schema (one line per problem: NaN/inf
weights, a zero std, malformed fields, a training state that cannot be resumed) and,
where the caller names one, the kind.
"""

from __future__ import annotations

import logging
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.atomic import write_atomic
from training.errors import CheckpointError
from training.fields import is_int as _is_int
from training.fields import normalization_problems
from training.model import KINDS, ModelConfig, PairNet, SeqNet, build_model, check_config, network_class

log = logging.getLogger(__name__)

FORMAT = "realtime-digits"
FORMAT_VERSION = 1

# MNIST's pixel statistics and geometry (the 20x20 ink box centred in 28x28).
MNIST_NORMALIZATION: dict[str, float | int] = {"mean": 0.1307, "std": 0.3081, "size": 28, "box": 20}
CLASS_NAMES = [str(d) for d in range(10)]
# training images stored with the weights so inference can calibrate int8 ranges offline
CALIBRATION_IMAGES = 256
KIND_NAMES = {"digits": "the digit network", "pairs": "the pair reader", "numbers": "the number reader"}


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
        "kind": model.KIND,
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
    return write_atomic(path, lambda f: torch.save(ckpt, f))


def read_checkpoint(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """Load and validate the dict (no model built): the archive's checksums, then the
    whole schema (:func:`checkpoint_problems`); ``kind``: the network the caller needs
    (``digits``, ``pairs``, ``numbers``; ``None``: any). Raises :class:`CheckpointError`,
    one line per problem, each naming the file."""
    path = Path(path)
    ckpt = _load_archive(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} checkpoint")
    version = ckpt.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{path}: checkpoint format version {version!r} ({type(version).__name__}), "
                              f"this code reads version {FORMAT_VERSION}")
    problems = checkpoint_problems(ckpt)
    found = checkpoint_kind(ckpt)
    config = ckpt.get("model_config")
    arch_kind = KINDS.get(config.get("arch", "digitnet")) if isinstance(config, dict) else None
    # a stored kind that is not its architecture's is a problem already, not a second one
    consistent = arch_kind is None or found == arch_kind
    if kind is not None and found is not None and found != kind and consistent:
        problems.insert(0, f"a {found} checkpoint ({KIND_NAMES.get(found, found)}), not a {kind} checkpoint "
                           f"({KIND_NAMES.get(kind, kind)})")
    if problems:
        raise CheckpointError("\n".join(f"{path}: {p}" for p in problems))
    return ckpt


def _load_archive(path: Path) -> Any:
    """The unpickled archive (``weights_only``), its entries' checksums verified first:
    torch.load itself reads damaged tensor bytes without a word."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    # torch.save writes a zip archive; anything else is corrupt, truncated or foreign
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt, truncated or not a PyTorch file)")
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt archive: {type(err).__name__})") from err
    if bad is not None:
        raise CheckpointError(f"{path}: damaged: archive entry {bad} fails its checksum")
    # torch's own warnings (about storage formats, say) would print before the error line
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - torch raises many types for bad files
            if "weights only" in str(err).lower() or "weights_only" in str(err):
                reason = "it holds pickled Python objects, which are never loaded"
            else:
                reason = f"corrupt archive: {type(err).__name__}"
            raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from err
    for w in caught:
        log.debug("%s: torch.load: %s", path, w.message)
    return ckpt


def checkpoint_kind(ckpt: dict[str, Any]) -> str | None:
    """The network a checkpoint holds: its stored ``kind``, else (checkpoints written
    before kinds were stored) the one its architecture makes; ``None`` when neither says."""
    if isinstance(ckpt.get("kind"), str):
        return ckpt["kind"]
    config = ckpt.get("model_config")
    arch = config.get("arch", "digitnet") if isinstance(config, dict) else None
    return KINDS.get(arch) if isinstance(arch, str) else None


def checkpoint_problems(ckpt: dict[str, Any]) -> list[str]:
    """Everything wrong with a checkpoint dict's schema, one line each: missing or
    malformed fields, a config this code cannot build, NaN/inf weights, class names that
    do not fit the outputs, calibration inputs of the wrong shape, a kind that is not its
    architecture's, a malformed training state."""
    problems = [f"checkpoint lacks {k!r}" for k in ("model_config", "state_dict", "normalization", "class_names")
                if k not in ckpt]
    config = _config_problems(ckpt.get("model_config"), problems) if "model_config" in ckpt else None
    if "state_dict" in ckpt:
        problems += _state_dict_problems(ckpt["state_dict"])
    if "normalization" in ckpt:
        problems += normalization_problems(ckpt["normalization"])
    names = ckpt.get("class_names")
    if "class_names" in ckpt and not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        problems.append(f"class_names must be a non-empty list of strings, not {names!r:.60}")
    elif config is not None and isinstance(names, list) and len(names) != config.num_classes:
        problems.append(f"{len(names)} class names for {config.num_classes} outputs")
    for key in ("metrics", "settings"):
        if key in ckpt and not isinstance(ckpt[key], dict):
            problems.append(f"{key} must be a dict, not {type(ckpt[key]).__name__}")
    kind = ckpt.get("kind")
    if "kind" in ckpt and kind not in set(KINDS.values()):
        problems.append(f"kind {kind!r:.40} is not one of {', '.join(sorted(set(KINDS.values())))}")
    elif kind is not None and config is not None and KINDS.get(config.arch) != kind:
        problems.append(f"kind {kind!r} but a {config.arch} network (a {KINDS.get(config.arch)} network)")
    if ckpt.get("calibration") is not None and config is not None:
        problems += _calibration_problems(ckpt["calibration"], network_class(config).input_shape(config))
    if "training_state" in ckpt:
        problems += training_state_problems(ckpt["training_state"], ())
    return problems


def _config_problems(value: Any, problems: list[str]) -> ModelConfig | None:
    """The config, or None with the problem appended."""
    if not isinstance(value, dict):
        problems.append(f"model_config must be a dict, not {type(value).__name__}")
        return None
    try:
        config = ModelConfig.from_dict(value)
        check_config(config)
    except (TypeError, ValueError) as err:
        problems.append(f"model config does not match this code ({err})")
        return None
    return config


def _state_dict_problems(sd: Any) -> list[str]:
    if not isinstance(sd, dict) or not sd:
        return [f"state_dict must be a non-empty dict of tensors, not {type(sd).__name__}"]
    wrong = [k for k, v in sd.items()
             if not (isinstance(k, str) and isinstance(v, torch.Tensor) and v.layout == torch.strided)]
    if wrong:
        return [f"state_dict entries are not named dense tensors: {', '.join(map(str, wrong[:3]))}"]
    bad = [k for k, v in sd.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    return [f"NaN or infinite weights in {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}"] if bad else []


def _calibration_problems(calib: Any, shape: tuple[int, int]) -> list[str]:
    if (isinstance(calib, torch.Tensor) and calib.dtype == torch.uint8 and calib.ndim == 3
            and tuple(calib.shape[1:]) == shape and len(calib) > 0):
        return []
    return [f"calibration images must be uint8 [N, {shape[0]}, {shape[1]}]"]


# what every trainer's training state holds; trainers name what else theirs needs
TRAINING_STATE_KEYS = ("epoch", "rows", "model", "optimizer", "scheduler", "torch_rng")


def training_state_problems(state: Any, needs: tuple[str, ...] = TRAINING_STATE_KEYS) -> list[str]:
    """What keeps ``state`` from being a resumable training state holding ``needs``."""
    if not isinstance(state, dict):
        return [f"training_state must be a dict, not {type(state).__name__}"]
    problems = [f"training_state lacks {k!r}" for k in needs if k not in state]
    epoch = state.get("epoch")
    if "epoch" in state and not (_is_int(epoch) and epoch >= 0):
        problems.append(f"training_state epoch {epoch!r:.20} is not a whole number >= 0")
    rows = state.get("rows")
    if "rows" in state and not (isinstance(rows, list) and all(isinstance(r, dict) for r in rows)):
        problems.append("training_state rows must be a list of dicts (one per epoch)")
    elif _is_int(epoch) and isinstance(rows, list) and len(rows) != epoch:
        problems.append(f"training_state has {len(rows)} metric rows for {epoch} epochs")
    for key in ("model", "optimizer", "scheduler", "ema"):
        if key in state and not isinstance(state[key], dict):
            problems.append(f"training_state {key} must be a dict, not {type(state[key]).__name__}")
    if isinstance(state.get("optimizer"), dict) and not {"state", "param_groups"} <= set(state["optimizer"]):
        problems.append("training_state optimizer is not an optimizer's state (no state and param_groups)")
    for key in ("torch_rng", "generator", "aug_generator"):
        if key in state and not (isinstance(state[key], torch.Tensor) and state[key].dtype == torch.uint8):
            problems.append(f"training_state {key} must be a random generator's state (uint8 tensor)")
    return problems


def input_shape(ckpt: dict[str, Any]) -> tuple[int, int]:
    """The (height, width) of the checkpoint's network's input field."""
    try:
        config = ModelConfig.from_dict(ckpt["model_config"])
        return network_class(config).input_shape(config)
    except (TypeError, ValueError, KeyError):
        size = int(ckpt["normalization"].get("size", 28))
        return size, size


def model_from_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike = "<checkpoint>") -> nn.Module:
    """Rebuild the network from the stored config and weights (eval mode); ``ckpt`` as
    :func:`read_checkpoint` returns it."""
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


def load_checkpoint(path: str | os.PathLike, kind: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, checkpoint dict)`` for a checkpoint file, validated (see
    :func:`read_checkpoint`; ``kind``: the network the caller needs, ``None``: any)."""
    ckpt = read_checkpoint(path, kind)
    return model_from_checkpoint(ckpt, path), ckpt
