"""Batched feature extraction from records, with optional flip test-time augmentation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from reid.data.datasets.base import Record
from reid.data.loaders import test_loader
from reid.data.transforms import EvalTransform, Preprocess


@dataclass(frozen=True)
class TestTimeOptions:
    """The Group Loss++ inference switches (METHOD.md section 4); defaults = plain inference."""

    __test__ = False  # not a pytest test class

    flip: bool = False  # average with the horizontal mirror
    scales: tuple[float, ...] = (1.0,)  # extra input scales to average over
    pool_lambda: float | None = None  # lambda * max + (1 - lambda) * avg pooling; None: as trained
    leaky_slope: float | None = None  # slope of the last activation instead of ReLU; None: as trained
    beta: float = 0.0  # embedding mixing e = f/|f| + beta * f

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        parts = [name for name, on in (("flip", self.flip), ("multiscale", len(self.scales) > 1)) if on]
        if self.pool_lambda is not None:
            parts.append(f"pool_lambda={self.pool_lambda}")
        if self.leaky_slope is not None:
            parts.append(f"leaky={self.leaky_slope}")
        if self.beta:
            parts.append(f"beta={self.beta}")
        return "+".join(parts) or "none"


@torch.no_grad()
def embed_batch(
    model: torch.nn.Module, images: torch.Tensor, options: TestTimeOptions = TestTimeOptions()
) -> torch.Tensor:
    """L2-normalised embeddings (B, D) of a normalised batch (B, 3, H, W).

    Only flip averaging is applied here so far; the other switches of `options` are
    implemented by the inference-strategies module.
    """
    features = model(images).float()
    if options.flip:
        features = features + model(images.flip(3)).float()
    return F.normalize(features, dim=1)


@torch.no_grad()
def extract_features(
    model: torch.nn.Module,
    records: Sequence[Record],
    pre: Preprocess,
    device: torch.device | str = "cpu",
    batch_size: int = 128,
    workers: int = 0,
    options: TestTimeOptions = TestTimeOptions(),
    progress: bool = True,
    desc: str = "extract",
) -> np.ndarray:
    """L2-normalised float32 features (N, D) of `records`, in record order."""
    model.eval()
    loader = test_loader(records, EvalTransform(pre), batch_size, workers)
    chunks = []
    for images, *_ in tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False):
        chunks.append(embed_batch(model, images.to(device, non_blocking=True), options).cpu())
    if not chunks:
        return np.zeros((0, getattr(model, "feature_dim", 0)), np.float32)
    return torch.cat(chunks).numpy().astype(np.float32, copy=False)


def cosine_distance(q_feats: np.ndarray, g_feats: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of L2-normalised features (monotone in Euclidean distance)."""
    return (1.0 - torch.from_numpy(q_feats) @ torch.from_numpy(g_feats).T).numpy()
