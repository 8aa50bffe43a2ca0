"""Losses: plain `nn.Module`s over tensors (embeddings, logits, labels); `build_loss` combines them."""

from .center import CenterLoss
from .combination import CombinedLoss, build_loss
from .cross_entropy import CrossEntropyLabelSmooth
from .group_loss import GroupLoss, pearson_similarity, random_anchor_mask, replicator_dynamics
from .ranked_list import RankedListLoss
from .triplet import TripletLoss

__all__ = [
    "CenterLoss",
    "CombinedLoss",
    "CrossEntropyLabelSmooth",
    "GroupLoss",
    "RankedListLoss",
    "TripletLoss",
    "build_loss",
    "pearson_similarity",
    "random_anchor_mask",
    "replicator_dynamics",
]
