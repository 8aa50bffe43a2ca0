"""Rebuild a trained model from a checkpoint, with its own preprocessing."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from reid.config import Config, config_from_dict
from reid.data.transforms import Preprocess
from reid.errors import ConfigError, DataError
from reid.io.fingerprint import stable_hash
from reid.io.run_folder import load_checkpoint

from .reid_model import ReidModel, build_model


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[ReidModel, Preprocess, Config, dict]:
    """Return (model in eval mode on `device`, its Preprocess, its Config, the raw checkpoint).

    `path`: a checkpoint file or a run folder (see reid.io.run_folder.RunFolder.resolve).
    """
    state = load_checkpoint(path)
    config = _config(state, path)
    pre = _preprocess(state.get("preprocess"), path)
    return model_from_checkpoint(state, device=device, where=path), pre, config, state


def _config(state: dict, where: object = "checkpoint") -> Config:
    try:
        config = config_from_dict(state["config"])
    except ConfigError as exc:
        raise DataError(f"{where}: its stored config is invalid: {exc}") from None
    config.model.pretrained = False  # the checkpoint holds the weights
    return config


def model_from_checkpoint(
    state: dict, weights: dict | None = None, device: str | torch.device = "cpu", where: object = "checkpoint"
) -> ReidModel:
    """The one way to rebuild a model from a loaded checkpoint: its architecture with `weights`
    (default: its own), in eval mode on `device`. A checkpoint that cannot be rebuilt is a one-line
    DataError naming `where` (its path)."""
    config = _config(state, where)
    try:
        model = build_model(config.model, int(state["num_classes"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{where}: cannot rebuild its model ({exc.__class__.__name__}: {exc})") from None
    weights = weights if weights is not None else state.get("model")
    if not isinstance(weights, dict):
        raise DataError(f"{where}: no model weights in the checkpoint")
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))[:200]
        raise DataError(
            f"{where}: weights do not fit its config (model.backbone={config.model.backbone}): {first}"
        ) from None
    return model.to(device).eval()


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

    def parts():
        for name in sorted(state["model"]):
            tensor = state["model"][name]
            yield name
            if isinstance(tensor, torch.Tensor):
                yield str(tensor.dtype)
                yield tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()

    return stable_hash(parts())
