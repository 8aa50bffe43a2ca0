"""Centre loss (Wen, Zhang, Li and Qiao, ECCV 2016): pull each embedding to its class centre."""

from __future__ import annotations

import torch
from torch import nn

from ._common import check_metric_inputs


class CenterLoss(nn.Module):
    """mean_i |f_i - c_{y_i}|^2 with learnable centres c (num_classes, feat_dim), initialised N(0, 1).

    This is the common re-ID form (torchreid, Luo et al.'s "strong baseline"): the mean over the batch
    of the squared distance, i.e. twice Wen et al.'s 1/2 * sum / n, so their recipe weights (0.0005)
    apply. The usual recipe gives the centres their own optimizer: plain SGD with a large lr (0.5), and
    before its step the centres' gradient is divided by the loss weight so the weight does not slow the
    centres down (Wen et al.'s alpha update). Put `self.centers` in that optimizer, not in the model's.
    Shapes: embeddings (n, feat_dim), labels (n,) in [0, num_classes).
    """

    def __init__(self, num_classes: int, feat_dim: int = 2048, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if num_classes < 1 or feat_dim < 1:
            raise ValueError(f"centre loss needs num_classes >= 1 and feat_dim >= 1, got {num_classes}, {feat_dim}")
        self.num_classes = num_classes
        self.feat_dim = feat_dim
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim, generator=generator))

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, feat_dim={self.feat_dim}"

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_metric_inputs("centre loss", embeddings, labels)
        if embeddings.shape[1] != self.feat_dim:
            raise ValueError(f"centre loss expects embeddings of width {self.feat_dim}, got {embeddings.shape[1]}")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= self.num_classes:
            raise ValueError(f"centre loss labels must lie in [0, {self.num_classes}), got min {low} max {high}")
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            centers = self.centers[labels.long()]
            diff = embeddings.to(centers.dtype) - centers
            return (diff * diff).sum(dim=1).mean()
