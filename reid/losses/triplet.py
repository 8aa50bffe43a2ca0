"""Batch-hard triplet loss (Hermans, Beyer and Leibe 2017, "In Defense of the Triplet Loss")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import at_least_float32, check_metric_inputs, pairwise_distances


class TripletLoss(nn.Module):
    """For each anchor: its farthest positive and nearest negative in the batch (Euclidean distance).

    loss_i = max(0, margin + d(a, p_hard) - d(a, n_hard)), or softplus(d(a, p_hard) - d(a, n_hard))
    with `soft_margin` (the margin is then unused). The loss is the mean over anchors that have both a
    positive (another sample of their identity) and a negative; anchors without one are skipped, and a
    batch with no valid anchor gives 0 (still connected to the graph). `normalize` L2-normalises the
    embeddings first (distances then lie in [0, 2]). Shapes: embeddings (n, d), labels (n,).
    """

    def __init__(self, margin: float = 0.3, soft_margin: bool = False, normalize: bool = False) -> None:
        super().__init__()
        if not margin >= 0:
            raise ValueError(f"triplet margin must be >= 0, got {margin!r}")
        self.margin = float(margin)
        self.soft_margin = bool(soft_margin)
        self.normalize = bool(normalize)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, soft_margin={self.soft_margin}, normalize={self.normalize}"

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_metric_inputs("triplet loss", embeddings, labels)
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            emb = at_least_float32(embeddings)
            if self.normalize:
                emb = F.normalize(emb, dim=1)
            dist = pairwise_distances(emb)
            same = labels.unsqueeze(0) == labels.unsqueeze(1)
            eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
            pos_mask, neg_mask = same & ~eye, ~same
            # masked max / min without inf: distances are >= 0, so 0 is neutral for the max and
            # (row max + 1) for the min; rows without a positive / negative are dropped below.
            hard_pos = torch.where(pos_mask, dist, torch.zeros_like(dist)).amax(dim=1)
            big = dist.detach().amax() + 1.0
            hard_neg = torch.where(neg_mask, dist, big).amin(dim=1)
            gap = hard_pos - hard_neg
            per_anchor = F.softplus(gap) if self.soft_margin else F.relu(gap + self.margin)
            valid = (pos_mask.any(dim=1) & neg_mask.any(dim=1)).to(per_anchor.dtype)
            return (per_anchor * valid).sum() / valid.sum().clamp_min(1.0)
