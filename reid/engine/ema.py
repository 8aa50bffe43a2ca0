"""An exponential moving average of a model's weights (evaluated and saved beside the model)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """Shadow weights w_ema <- decay * w_ema + (1 - decay) * w after each optimizer step.

    Floating-point parameters and buffers are averaged; integer buffers (BatchNorm's
    num_batches_tracked) are copied. The shadow model is frozen and kept in eval mode.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        current = model.state_dict()
        for name, shadow in self.module.state_dict().items():
            value = current[name].detach()
            if shadow.dtype.is_floating_point:
                shadow.mul_(self.decay).add_(value.to(shadow.dtype), alpha=1.0 - self.decay)
            else:
                shadow.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
