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


def checked_cpu_bf16(dtype: torch.dtype | None, device: torch.device) -> tuple[torch.dtype | None, str | None]:
    """`dtype`, or None plus the one-line reason when bf16 autocast on this CPU fails its self-check.

    Only CPU bf16 is checked (once per process, see reid.models.cpu_bf16): on AMX CPUs some oneDNN
    builds give NaN or non-repeatable bf16 convolutions, and training must not silently diverge.
    """
    if dtype != torch.bfloat16 or device.type != "cpu":
        return dtype, None
    from reid.models.cpu_bf16 import cpu_bf16_problem, fallback_message

    problem = cpu_bf16_problem()
    return (dtype, None) if problem is None else (None, fallback_message(problem, "train.amp=bf16"))


def grads_finite(params: list[torch.Tensor]) -> bool:
    """True when every gradient is finite (one fused norm over all of them)."""
    grads = [p.grad for p in params if p.grad is not None]
    return not grads or bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))
