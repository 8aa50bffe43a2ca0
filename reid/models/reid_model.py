"""The re-ID model: backbone -> pooling -> BNNeck -> (embedding, logits)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reid.config import ModelConfig

from .backbones import build_backbone


class GeneralizedMeanPooling(nn.Module):
    """GeM pooling with a learnable exponent p (Radenović et al.)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p, self.eps = nn.Parameter(torch.tensor(p)), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x.clamp(min=self.eps).pow(self.p), 1).pow(1.0 / self.p).flatten(1)


def pool(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "avg":
        return F.adaptive_avg_pool2d(x, 1).flatten(1)
    if kind == "max":
        return F.adaptive_max_pool2d(x, 1).flatten(1)
    raise ValueError(f"unknown pooling {kind!r}")


def mixed_pool(x: torch.Tensor, lam: float) -> torch.Tensor:
    """lam * max-pool + (1 - lam) * avg-pool of a feature map (B, C, h, w) -> (B, C) (Group Loss++)."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"pool lambda must be in [0, 1], got {lam}")
    return lam * pool(x, "max") + (1.0 - lam) * pool(x, "avg")


class ReidModel(nn.Module):
    """Training: returns {"features": pooled (B, C), "neck": the BNNeck output (B, C), "logits": (B, m)}.
    Evaluation: returns the embedding (B, C), the BNNeck output when the neck is on.
    """

    def __init__(self, config: ModelConfig, num_classes: int) -> None:
        super().__init__()
        if config.pooling not in ("avg", "max", "gem"):
            raise ValueError(f"model.pooling: unknown {config.pooling!r} (avg, max or gem)")
        if config.neck not in ("bnneck", "none"):
            raise ValueError(f"model.neck: unknown {config.neck!r} (bnneck or none)")
        self.backbone = build_backbone(config.backbone, config.pretrained, config.last_stride)
        dim = self.backbone.out_channels
        self.pooling = config.pooling
        self.gem = GeneralizedMeanPooling() if config.pooling == "gem" else None
        self.neck = nn.BatchNorm1d(dim) if config.neck == "bnneck" else nn.Identity()
        if isinstance(self.neck, nn.BatchNorm1d):
            self.neck.bias.requires_grad_(False)  # BNNeck: no shift (Luo et al. 2019)
            nn.init.constant_(self.neck.weight, 1.0)
            nn.init.constant_(self.neck.bias, 0.0)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)
        self.feature_dim = dim

    def pool_features(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.gem(feature_map) if self.gem is not None else pool(feature_map, self.pooling)

    def forward(self, x: torch.Tensor):
        pooled = self.pool_features(self.backbone(x))
        embedding = self.neck(pooled)
        if not self.training:
            return embedding
        return {"features": pooled, "neck": embedding, "logits": self.classifier(embedding)}

    def embed(self, x: torch.Tensor, pool_lambda: float | None = None, leaky_slope: float | None = None):
        """Test-time embedding (B, C) with the Group Loss++ switches; both None: same as eval `forward`.

        pool_lambda: replace the trained pooling by lambda * max + (1 - lambda) * avg.
        leaky_slope: replace the final ReLU of the last block by a leaky ReLU of this slope
        (1 = no final activation). The weights are untouched; call in eval mode.
        """
        if leaky_slope is None:
            feature_map = self.backbone(x)
        elif hasattr(self.backbone, "forward_softened"):
            feature_map = self.backbone.forward_softened(x, leaky_slope)
        else:
            raise ValueError(f"{type(self.backbone).__name__} cannot soften its last activation")
        pooled = self.pool_features(feature_map) if pool_lambda is None else mixed_pool(feature_map, pool_lambda)
        return self.neck(pooled)


def build_model(config: ModelConfig, num_classes: int) -> ReidModel:
    return ReidModel(config, num_classes)
