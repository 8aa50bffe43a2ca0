"""Optimizers and per-epoch learning-rate schedules: linear warm-up, then multistep, cosine or
constant, times the Group Loss authors' drops at `optim.reload_best_at` (where the trainer
also reloads the best checkpoint)."""

from __future__ import annotations

import math

import torch

from reid.config import OptimConfig
from reid.errors import ConfigError


def build_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "radam":
        return torch.optim.RAdam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum, nesterov=True)
    raise ConfigError(f"optim.name: unknown optimizer {cfg.name!r} (adam, adamw, radam, sgd)")


def reload_drops(epoch: int, cfg: OptimConfig) -> int:
    """How many reload-best points (1-based epochs) lie at or before 0-based `epoch`."""
    return sum(epoch + 1 >= r for r in cfg.reload_best_at)


def lr_factor(epoch: int, cfg: OptimConfig, total_epochs: int) -> float:
    """Multiplier of the base learning rate during `epoch` (0-based); 0 from `optim.zero_lr_from` on."""
    if cfg.zero_lr_from and epoch + 1 >= cfg.zero_lr_from:
        return 0.0
    return _base_factor(epoch, cfg, total_epochs) * cfg.reload_factor ** reload_drops(epoch, cfg)


def _base_factor(epoch: int, cfg: OptimConfig, total_epochs: int) -> float:
    if epoch < cfg.warmup_epochs:
        alpha = epoch / cfg.warmup_epochs
        return cfg.warmup_factor * (1 - alpha) + alpha
    if cfg.scheduler == "constant":
        return 1.0
    if cfg.scheduler == "multistep":
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if cfg.scheduler == "cosine":
        span = max(1, total_epochs - cfg.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / span))
    raise ConfigError(f"optim.scheduler: unknown schedule {cfg.scheduler!r} (multistep, cosine, constant)")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_epochs: int):
    """A LambdaLR stepped once per epoch, following `lr_factor`."""
    if any(not isinstance(r, int) or r < 2 for r in cfg.reload_best_at):
        raise ConfigError(f"optim.reload_best_at: expected 1-based epochs >= 2, got {cfg.reload_best_at}")
    if cfg.zero_lr_from == 1:
        raise ConfigError("optim.zero_lr_from: expected a 1-based epoch >= 2 (at 1 nothing would train), got 1")
    if not cfg.reload_factor > 0:
        raise ConfigError(f"optim.reload_factor must be positive, got {cfg.reload_factor}")
    lr_factor(0, cfg, total_epochs)  # validate the name before training starts
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: lr_factor(epoch, cfg, total_epochs))
