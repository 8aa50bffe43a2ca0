"""Ranked List Loss (Wang et al., CVPR 2019 / TPAMI 2021), docs/method.md section 2."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import at_least_float32, check_metric_inputs, pairwise_distances


def _weighted_mean(
    values: torch.Tensor, mask: torch.Tensor, temperature: float, detach: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: mean of `values` over `mask` with weights exp(temperature * values).

    values, mask (n, n). Returns (means (n,), log of the total weight (n,)); a row with an empty mask
    has mean 0 and log-weight -inf. The exponent is shifted by its row maximum, so any temperature
    is overflow-free; the shift cancels in the mean and is added back to the log-weight.
    """
    exponent = temperature * values
    if detach:
        exponent = exponent.detach()
    exponent = torch.where(mask, exponent, torch.full_like(exponent, float("-inf")))
    shift = exponent.detach().amax(dim=1, keepdim=True)
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    weights = torch.exp(exponent - shift)
    total = weights.sum(dim=1)
    has = mask.any(dim=1)
    safe_total = torch.where(has, total, torch.ones_like(total))
    means = (weights * torch.where(mask, values, torch.zeros_like(values))).sum(dim=1) / safe_total
    log_total = torch.where(has, torch.log(safe_total) + shift.squeeze(1), torch.full_like(total, float("-inf")))
    return means, log_total


class RankedListLoss(nn.Module):
    """Ranked List Loss on L2-normalised embeddings with Euclidean distances d_ij.

    Every sample i is a query against the rest of the batch:
    - non-trivial positives (same id, j != i, d_ij > alpha - margin) are pulled inside alpha - margin:
      L_P(i) = weighted mean of (d_ij - (alpha - margin)), weights exp(temperature_pos * (d_ij - (alpha - margin)));
    - non-trivial negatives (other id, d_ij < alpha) are pushed beyond alpha:
      L_N(i) = weighted mean of (alpha - d_ij), weights exp(temperature_neg * (alpha - d_ij));
    - L(i) = L_P(i) + lam * L_N(i); an empty set contributes 0. The loss is mean_i L(i).

    `query_weighting` reproduces the authors' Caffe layer (DistanceWeightedValidPairLossV12): each
    query's loss is scaled by its share of the batch's total violation weight,
    s_i = (S_P(i) + S_N(i)) / sum_k (S_P(k) + S_N(k)) with S the sums of the exp weights above, and the
    loss is sum_i s_i L(i) (so queries with many or severe violations count more; a batch without
    violations gives 0). The shares are constants for the gradient, as in the authors' backward pass.
    `detach_weights` (default True, as the authors' layer) also treats the exp weights inside the
    means as constants; False differentiates through them.
    Shapes: embeddings (n, d), labels (n,).
    """

    def __init__(
        self,
        margin: float = 0.4,
        alpha: float = 1.2,
        temperature_neg: float = 10.0,
        temperature_pos: float = 0.0,
        lam: float = 1.0,
        query_weighting: bool = False,
        detach_weights: bool = True,
    ) -> None:
        super().__init__()
        if not 0 <= margin <= alpha:
            raise ValueError(f"ranked list loss needs 0 <= margin <= alpha, got margin {margin!r}, alpha {alpha!r}")
        if not 0 < alpha <= 2:
            raise ValueError(f"ranked list loss alpha must be in (0, 2] (unit-sphere distances), got {alpha!r}")
        for name, value in (("temperature_neg", temperature_neg), ("temperature_pos", temperature_pos), ("lam", lam)):
            if not 0 <= value < float("inf"):
                raise ValueError(f"ranked list loss {name} must be a finite number >= 0, got {value!r}")
        self.margin = float(margin)
        self.alpha = float(alpha)
        self.temperature_neg = float(temperature_neg)
        self.temperature_pos = float(temperature_pos)
        self.lam = float(lam)
        self.query_weighting = bool(query_weighting)
        self.detach_weights = bool(detach_weights)

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, alpha={self.alpha}, temperature_neg={self.temperature_neg}, "
            f"temperature_pos={self.temperature_pos}, lam={self.lam}, query_weighting={self.query_weighting}"
        )

    def per_query(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L(i) (n,), log of query i's total violation weight log(S_P(i) + S_N(i)) (n,))."""
        check_metric_inputs("ranked list loss", embeddings, labels)
        dist = pairwise_distances(F.normalize(at_least_float32(embeddings), dim=1))
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        boundary = self.alpha - self.margin
        pos_values, neg_values = dist - boundary, self.alpha - dist
        pos_mask = same & ~eye & (pos_values > 0)
        neg_mask = ~same & (neg_values > 0)
        loss_p, log_p = _weighted_mean(pos_values, pos_mask, self.temperature_pos, self.detach_weights)
        loss_n, log_n = _weighted_mean(neg_values, neg_mask, self.temperature_neg, self.detach_weights)
        return loss_p + self.lam * loss_n, torch.logaddexp(log_p, log_n)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            losses, log_weight = self.per_query(embeddings, labels)
            if not self.query_weighting:
                return losses.mean()
            log_weight = log_weight.detach()
            top = log_weight.amax()
            top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
            weight = torch.exp(log_weight - top)
            shares = weight / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)
            return (shares * losses).sum()
