"""Evaluate a model on a query/gallery split: extract, compare, rank."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from reid.data.datasets.base import Record
from reid.data.transforms import Preprocess
from reid.evaluation import RankResult, evaluate_rank
from reid.inference.features import TestTimeOptions, cosine_distance, extract_features


def evaluate_model(
    model: torch.nn.Module,
    query: Sequence[Record],
    gallery: Sequence[Record],
    pre: Preprocess,
    device: torch.device | str,
    batch_size: int = 128,
    workers: int = 0,
    options: TestTimeOptions = TestTimeOptions(),
    progress: bool = True,
) -> RankResult:
    """Rank-k, mAP and mINP of `model` on `query` against `gallery` (cosine distance)."""
    kwargs = dict(pre=pre, device=device, batch_size=batch_size, workers=workers, options=options, progress=progress)
    q = extract_features(model, query, desc="query", **kwargs)
    g = extract_features(model, gallery, desc="gallery", **kwargs)
    return evaluate_rank(
        cosine_distance(q, g),
        np.array([r.pid for r in query]),
        np.array([r.pid for r in gallery]),
        np.array([r.camid for r in query]),
        np.array([r.camid for r in gallery]),
    )
