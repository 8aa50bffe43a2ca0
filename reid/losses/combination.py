"""A weighted sum of losses chosen by name in the config."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reid.errors import ConfigError

from .cross_entropy import CrossEntropyLabelSmooth
from .group_loss import GroupLoss


def _make(name: str, options: dict[str, Any], num_classes: int) -> nn.Module:
    try:
        if name == "group":
            return GroupLoss(num_classes, **options)
        if name == "ce":
            return CrossEntropyLabelSmooth(**options)
    except TypeError as exc:
        raise ConfigError(f"loss.{name}: {exc}") from None
    raise ConfigError(f"loss.{name}: unknown loss (known: group, ce)")


class CombinedLoss(nn.Module):
    """sum_i weight_i * loss_i; forward returns (total, {name: value})."""

    def __init__(self, spec: dict[str, dict[str, Any]], num_classes: int) -> None:
        super().__init__()
        if not spec:
            raise ConfigError("loss: at least one loss is needed")
        self.weights: dict[str, float] = {}
        self.terms = nn.ModuleDict()
        for name, options in spec.items():
            options = dict(options or {})
            self.weights[name] = float(options.pop("weight", 1.0))
            self.terms[name] = _make(name, options, num_classes)

    def forward(self, embeddings: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor):
        parts = {}
        total = embeddings.new_zeros((), dtype=torch.float32)
        for name, term in self.terms.items():
            value = term(logits, labels) if name == "ce" else term(embeddings, logits, labels)
            parts[name] = float(value.detach())
            total = total + self.weights[name] * value
        return total, parts


def build_loss(spec: dict[str, dict[str, Any]], num_classes: int) -> CombinedLoss:
    return CombinedLoss(spec, num_classes)
