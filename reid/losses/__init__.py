"""Losses: plain `nn.Module`s over tensors (embeddings, logits, labels)."""

from .cross_entropy import CrossEntropyLabelSmooth
from .group_loss import GroupLoss

__all__ = ["CrossEntropyLabelSmooth", "GroupLoss"]
