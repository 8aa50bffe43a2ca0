"""The Group Loss (Elezi et al., ECCV 2020): label propagation by replicator dynamics.

See METHOD.md section 1. Shapes: embeddings (n, d), logits (n, m), labels (n,).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cross_entropy import CrossEntropyLabelSmooth


def pearson_similarity(embeddings: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between rows: centre each row on its own mean, then cosine."""
    centred = embeddings - embeddings.mean(dim=1, keepdim=True)
    normed = F.normalize(centred, dim=1, eps=1e-12)
    return normed @ normed.t()


def random_anchor_mask(
    labels: torch.Tensor, num_anchors: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Boolean mask choosing up to `num_anchors` random samples per identity, vectorised."""
    n = labels.numel()
    noise = torch.rand(n, generator=generator, device="cpu").to(labels.device)
    # rank of each sample among its identity by random key
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    rank = (same & (noise.unsqueeze(0) < noise.unsqueeze(1))).sum(dim=1)
    return rank < num_anchors


class GroupLoss(nn.Module):
    """Group Loss with the authors' defaults (Pearson, diagonal kept, tau 80, T 2, 3 anchors)."""

    def __init__(
        self,
        num_classes: int,
        temperature: float = 80.0,
        num_anchors: int = 3,
        num_iters: int = 2,
        ce_weight: float = 1.0,
        label_smoothing: float = 0.1,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"Group Loss needs at least 2 classes, got {num_classes}")
        self.num_classes = num_classes
        self.temperature = temperature
        self.num_anchors = num_anchors
        self.num_iters = num_iters
        self.ce_weight = ce_weight
        self.ce = CrossEntropyLabelSmooth(label_smoothing)

    def forward(
        self,
        embeddings: torch.Tensor,
        logits: torch.Tensor,
        labels: torch.Tensor,
        anchor_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            emb, z = embeddings.float(), logits.float()
            weights = F.relu(pearson_similarity(emb))
            probs = F.softmax(z / self.temperature, dim=1)
            if anchor_mask is None:
                anchor_mask = random_anchor_mask(labels, self.num_anchors)
            one_hot = F.one_hot(labels, self.num_classes).to(probs.dtype)
            probs = torch.where(anchor_mask.unsqueeze(1), one_hot, probs)
            for _ in range(self.num_iters):
                probs = probs * (weights @ probs)
                probs = probs / probs.sum(dim=1, keepdim=True).clamp_min(1e-12)
            nll = -torch.log(probs.gather(1, labels.unsqueeze(1)).squeeze(1) + 1e-12).mean()
            return nll + self.ce_weight * self.ce(z, labels)
