"""Helpers shared by the metric losses: input checks and pairwise Euclidean distances."""

from __future__ import annotations

import torch


def check_metric_inputs(name: str, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    """Raise ValueError unless embeddings are (n, d) floats and labels (n,) integers, n >= 1."""
    if embeddings.dim() != 2 or labels.dim() != 1 or embeddings.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{name} expects embeddings (n, d) and labels (n,), got {tuple(embeddings.shape)}, {tuple(labels.shape)}"
        )
    if embeddings.shape[0] == 0:
        raise ValueError(f"{name} got an empty batch")
    if not embeddings.is_floating_point():
        raise ValueError(f"{name} embeddings must be floating point, got {embeddings.dtype}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"{name} labels must be integer identities, got {labels.dtype}")


def pairwise_distances(embeddings: torch.Tensor, min_sq: float = 1e-12) -> torch.Tensor:
    """Euclidean distances (n, n) via |a|^2 + |b|^2 - 2ab, squared distances clamped at `min_sq`.

    The clamp keeps sqrt's gradient finite at d = 0 (the diagonal, duplicate samples): there the
    gradient is 0. Rows are rescaled by the batch's largest entry first so 1e6-sized features neither
    overflow nor lose everything to cancellation; distances are scaled back afterwards.
    """
    scale = embeddings.detach().abs().amax().clamp_min(1e-30)
    x = embeddings / scale
    sq = (x * x).sum(dim=1)
    d2 = sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * (x @ x.t())
    return d2.clamp_min(min_sq).sqrt() * scale


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """float64 stays float64 (reference checks, gradcheck); anything else (bf16, fp16, ints) becomes float32."""
    return tensor if tensor.dtype == torch.float64 else tensor.float()
