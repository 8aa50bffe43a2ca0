"""Mixed precision settings: which autocast dtype, whether a grad scaler is needed."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from reid.errors import ConfigError


def amp_dtype(setting: bool | str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `train.amp` on `device`, or None for full precision.

    "none"/false: fp32. "bf16": bfloat16 autocast (CUDA or CPU). "fp16": float16 autocast
    with a gradient scaler (CUDA only). true (the old boolean form): bf16 when the GPU
    supports it, else fp16; off on the CPU.
    """
    if setting is False or setting is None or setting == "none":
        return None
    if setting is True:
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if setting == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("train.amp = bf16 but this GPU has no bfloat16 support; use fp16")
        return torch.bfloat16
    if setting == "fp16":
        if device.type != "cuda":
            raise ConfigError("train.amp = fp16 needs a CUDA device; use bf16 on the CPU")
        return torch.float16
    raise ConfigError(f"train.amp: unknown setting {setting!r} (none, bf16, fp16)")


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for the forward pass (a no-op context when dtype is None)."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)
