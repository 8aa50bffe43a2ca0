"""The device name of a run config -> a torch.device (one-line ConfigErrors)."""

from __future__ import annotations

import torch

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
