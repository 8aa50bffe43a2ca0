"""Checks of the training options and the device name (one-line ConfigErrors)."""

from __future__ import annotations

import torch

from reid.config import Config
from reid.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """train.device ("auto", "cpu", "cuda", "cuda:N") -> a torch.device that exists here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device = {name} but CUDA is not available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: unknown device {name!r}") from None


def check_options(config: Config, has_val: bool) -> None:
    """Raise a one-line ConfigError for train/optim options that cannot work together."""
    cfg, optim = config.train, config.optim
    if optim.reload_best_at and not (has_val and cfg.eval_every > 0):
        raise ConfigError("optim.reload_best_at needs data.val_identities > 0 and train.eval_every > 0")
    bad = [e for e in cfg.snapshot_epochs if not isinstance(e, int) or not 1 <= e <= cfg.epochs]
    if bad:
        raise ConfigError(f"train.snapshot_epochs: {bad} outside 1..train.epochs ({cfg.epochs})")
    for key in ("grad_clip", "checkpoint_every", "eval_every"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"train.{key} must be >= 0, got {getattr(cfg, key)}")
    if not 0 <= cfg.classifier_warmup_epochs < cfg.epochs:
        raise ConfigError(
            f"train.classifier_warmup_epochs must be in [0, train.epochs), got {cfg.classifier_warmup_epochs}"
        )
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise ConfigError(f"train.ema_decay must be in [0, 1), got {cfg.ema_decay}")
