"""Test-time augmentation: average a model's raw embeddings over flips and input scales."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def resize_batch(images: torch.Tensor, scale: float) -> torch.Tensor:
    """Bilinearly resize a normalised batch (B, 3, H, W) by `scale` (antialiased when shrinking)."""
    if scale == 1.0:
        return images
    height, width = images.shape[-2:]
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=scale < 1.0)


def _embed_view(
    model: torch.nn.Module, images: torch.Tensor, pool_lambda: float | None, leaky_slope: float | None
) -> torch.Tensor:
    if pool_lambda is None and leaky_slope is None:
        return model(images).float()
    if not hasattr(model, "embed"):
        raise ValueError(f"{type(model).__name__} has no embed(); pool_lambda/leaky_slope need a ReidModel")
    return model.embed(images, pool_lambda=pool_lambda, leaky_slope=leaky_slope).float()


@torch.no_grad()
def view_average(
    model: torch.nn.Module,
    images: torch.Tensor,
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
    pool_lambda: float | None = None,
    leaky_slope: float | None = None,
) -> torch.Tensor:
    """Mean raw (unnormalised) embedding (B, D) over the views scale x {image, mirror}.

    The raw mean (not a mean of unit vectors) is what the embedding mixing e = f/|f| + beta f
    then works on; for plain L2-normalised output the two differ only by the views' norms.
    """
    total, views = None, 0
    for scale in scales:
        scaled = resize_batch(images, scale)
        for batch in (scaled, scaled.flip(3)) if flip else (scaled,):
            out = _embed_view(model, batch, pool_lambda, leaky_slope)
            total = out if total is None else total + out
            views += 1
    if total is None:
        raise ValueError("scales must not be empty")
    return total / views
