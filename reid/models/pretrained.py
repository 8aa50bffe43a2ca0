"""Local ImageNet weights for a backbone, and the normalisation that goes with them.

A partial load is the classic silent failure of re-ID code (a renamed layer, a checkpoint of
another architecture): here a file must cover at least `MIN_MATCHED` of the backbone's tensors,
with matching shapes, or the load is refused with the first missing and unexpected keys named.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from reid.config import Config
from reid.data.transforms import Preprocess
from reid.errors import ConfigError

from .convert import unwrap_state_dict

log = logging.getLogger("reid")

MIN_MATCHED = 0.95  # share of the backbone's tensors a weights file must provide
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _first(keys: list[str], count: int = 5) -> str:
    shown = ", ".join(keys[:count])
    return f"{shown}{', ...' if len(keys) > count else ''}" if keys else "none"


def load_matching(target: nn.Module, state: dict[str, torch.Tensor], path: str) -> tuple[int, int]:
    """Load the tensors of `state` that `target` has (same name and shape); return (loaded, backbone total).

    Raises ConfigError when fewer than MIN_MATCHED of `target`'s tensors are found, naming the first
    missing and unexpected keys (and shape mismatches), so a wrong file never trains silently.
    """
    own = target.state_dict()
    matched = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    missing = [k for k in own if k not in matched]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in state if k in own and k not in matched
    ]
    if len(matched) < MIN_MATCHED * len(own):
        detail = f"; shape mismatches: {_first(wrong_shape, 3)}" if wrong_shape else ""
        raise ConfigError(
            f"model.pretrained: {path} matches only {len(matched)} of the backbone's {len(own)} tensors "
            f"(need {MIN_MATCHED:.0%}); first missing: {_first(missing)}; first unexpected: {_first(unexpected)}"
            f"{detail} (convert other layouts with tools/convert_weights.py)"
        )
    target.load_state_dict(matched, strict=False)
    if missing:
        log.warning("model.pretrained: %d backbone tensors not in the file: %s", len(missing), _first(missing))
    return len(matched), len(own)


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """A state dict from a .pth/.pt file (weights only), unwrapped; ConfigError if absent or unreadable."""
    if not Path(path).is_file():
        raise ConfigError(f"model.pretrained: weights file {path} not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        return unwrap_state_dict(obj)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
        raise ConfigError(f"model.pretrained: {path} is not a readable state dict ({reason})") from None


def backbone_normalisation(backbone: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the backbone's ImageNet weights expect: timm's pretrained config, else ImageNet's."""
    if backbone.startswith("timm:"):
        import timm

        try:
            cfg = timm.models.get_pretrained_cfg(backbone.split(":", 1)[1])
        except Exception:  # noqa: BLE001 - unknown names are reported when the model is built
            cfg = None
        if cfg is not None and getattr(cfg, "mean", None) and getattr(cfg, "std", None):
            return tuple(float(x) for x in cfg.mean), tuple(float(x) for x in cfg.std)
    return IMAGENET_MEAN, IMAGENET_STD


def _triple(value: object, key: str, positive: bool) -> tuple[float, float, float]:
    ok = isinstance(value, (list, tuple)) and len(value) == 3
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not ok or (positive and not all(v > 0 for v in value)):
        kind = "positive numbers" if positive else "numbers"
        raise ConfigError(f"{key}: expected a list of 3 {kind} (one per RGB channel), got {value!r}")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def preprocess_for(config: Config) -> Preprocess:
    """The input contract of a run: size from data.*, mean/std from data.mean/std (when set) or the backbone's."""
    mean, std = backbone_normalisation(config.model.backbone)
    data = config.data
    return Preprocess(
        height=data.height,
        width=data.width,
        mean=_triple(data.mean, "data.mean", False) if data.mean else mean,
        std=_triple(data.std, "data.std", True) if data.std else std,
    )
