"""Cross-entropy with label smoothing (Szegedy et al.), the re-ID classifier loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import at_least_float32


class CrossEntropyLabelSmooth(nn.Module):
    """Cross-entropy against (1 - eps) * one_hot + eps / m, averaged over the batch; float32 inside.

    logits (n, m), labels (n,) int in [0, m). `num_classes`, when given, is checked against m.
    """

    def __init__(self, epsilon: float = 0.1, num_classes: int | None = None) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"label smoothing must be in [0, 1), got {epsilon}")
        if num_classes is not None and num_classes < 2:
            raise ValueError(f"cross-entropy needs num_classes >= 2, got {num_classes}")
        self.epsilon = float(epsilon)
        self.num_classes = num_classes

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if logits.dim() != 2 or labels.dim() != 1 or logits.shape[0] != labels.shape[0]:
            raise ValueError(
                f"cross-entropy expects logits (n, m) and labels (n,), got {tuple(logits.shape)}, {tuple(labels.shape)}"
            )
        if self.num_classes is not None and logits.shape[1] != self.num_classes:
            raise ValueError(f"cross-entropy logits have {logits.shape[1]} columns, num_classes is {self.num_classes}")
        with torch.autocast(device_type=logits.device.type, enabled=False):
            return F.cross_entropy(at_least_float32(logits), labels.long(), label_smoothing=self.epsilon)
