"""Batched feature extraction from records, with optional flip test-time augmentation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from reid.data.datasets.base import Record
from reid.data.loaders import test_loader
from reid.data.transforms import EvalTransform, Preprocess


@torch.no_grad()
def embed_batch(model: torch.nn.Module, images: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """Embeddings (B, D) of a normalised batch (B, 3, H, W); flip TTA averages with the mirror."""
    features = model(images).float()
    if flip:
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
    flip: bool = False,
    progress: bool = True,
    desc: str = "extract",
) -> np.ndarray:
    """L2-normalised float32 features (N, D) of `records`, in record order."""
    model.eval()
    loader = test_loader(records, EvalTransform(pre), batch_size, workers)
    chunks = []
    for images, *_ in tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False):
        chunks.append(embed_batch(model, images.to(device, non_blocking=True), flip).cpu())
    if not chunks:
        return np.zeros((0, getattr(model, "feature_dim", 0)), np.float32)
    return torch.cat(chunks).numpy().astype(np.float32, copy=False)


def cosine_distance(q_feats: np.ndarray, g_feats: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of L2-normalised features (monotone in Euclidean distance)."""
    return (1.0 - torch.from_numpy(q_feats) @ torch.from_numpy(g_feats).T).numpy()
