"""Losses: plain `nn.Module`s over tensors (embeddings, logits, labels)."""

from .combination import CombinedLoss, build_loss
from .cross_entropy import CrossEntropyLabelSmooth
from .group_loss import GroupLoss

__all__ = ["CombinedLoss", "CrossEntropyLabelSmooth", "GroupLoss", "build_loss"]
