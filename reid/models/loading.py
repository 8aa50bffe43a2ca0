"""Rebuild a trained model from a checkpoint, with its own preprocessing."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch

from reid.config import Config, config_from_dict
from reid.data.transforms import Preprocess
from reid.engine.checkpoint import load_checkpoint
from reid.errors import ConfigError, DataError

from .reid_model import ReidModel, build_model


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[ReidModel, Preprocess, Config, dict]:
    """Return (model in eval mode on `device`, its Preprocess, its Config, the raw checkpoint)."""
    state = load_checkpoint(path)
    try:
        config = config_from_dict(state["config"])
    except ConfigError as exc:
        raise DataError(f"{path}: its stored config is invalid: {exc}") from None
    config.model.pretrained = False  # the checkpoint holds the weights
    pre = _preprocess(state.get("preprocess"), path)
    try:
        num_classes = int(state["num_classes"])
        model = build_model(config.model, num_classes)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: cannot rebuild its model ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(state.get("model"), dict):
        raise DataError(f"{path}: no model weights in the checkpoint")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))[:200]
        raise DataError(
            f"{path}: weights do not fit its config (model.backbone={config.model.backbone}): {first}"
        ) from None
    return model.to(device).eval(), pre, config, state


def _preprocess(values: object, path: str | Path) -> Preprocess:
    """The checkpoint's Preprocess, checked: a bad one would crash deep inside OpenCV later."""
    try:
        pre = Preprocess.from_dict(values)  # type: ignore[arg-type]
        ok = (
            pre.height > 0
            and pre.width > 0
            and len(pre.mean) == 3
            and len(pre.std) == 3
            and all(math.isfinite(float(m)) for m in pre.mean)
            and all(math.isfinite(float(s)) and float(s) > 0 for s in pre.std)
            and pre.color in ("rgb", "bgr")
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: invalid preprocess entry ({exc.__class__.__name__}: {exc})") from None
    if not ok:
        raise DataError(
            f"{path}: invalid preprocess entry {values} (need height, width > 0, 3 means, 3 stds > 0, rgb|bgr)"
        )
    return pre


def weights_fingerprint(state: dict) -> str:
    """A short hash of a checkpoint's model weights: names a model by its content, not its path.

    Used to recognise that a half-written feature file came from the same model before
    resuming it (a retrained checkpoint at the same path gets a different fingerprint).
    """
    digest = hashlib.sha256()
    for name in sorted(state["model"]):
        tensor = state["model"][name]
        digest.update(name.encode())
        if isinstance(tensor, torch.Tensor):
            digest.update(str(tensor.dtype).encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]
