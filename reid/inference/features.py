"""Batched feature extraction from records with the Group Loss++ test-time switches (docs/method.md section 4)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

from reid.data.datasets.base import Record
from reid.data.loaders import test_loader
from reid.data.transforms import EvalTransform, Preprocess
from reid.evaluation.distance import l2_normalize
from reid.test_time import DEFAULTS, TestConfig

from .tta import view_average

# The test-time options are reid.test_time.TestConfig; this older name stays importable.
TestTimeOptions = TestConfig


def mix_embeddings(features: torch.Tensor, beta: float = 0.0) -> torch.Tensor:
    """e = f/|f| + beta * f for raw embeddings (N, D); beta = 0 is plain L2 normalisation."""
    unit = l2_normalize(features)
    return unit + beta * features if beta else unit


def finalize_features(raw: np.ndarray, beta: float = 0.0) -> np.ndarray:
    """`mix_embeddings` on a float32 array (N, D) of raw embeddings."""
    return mix_embeddings(torch.from_numpy(np.ascontiguousarray(raw, np.float32)), beta).numpy()


@torch.no_grad()
def embed_batch(model: torch.nn.Module, images: torch.Tensor, options: TestConfig = DEFAULTS) -> torch.Tensor:
    """Final embeddings (B, D) of a normalised batch (B, 3, H, W) under all switches of `options`."""
    return mix_embeddings(view_average(model, images, *options.network_key()), options.beta)


@torch.no_grad()
def extract_features(
    model: torch.nn.Module,
    records: Sequence[Record],
    pre: Preprocess,
    device: torch.device | str = "cpu",
    batch_size: int = 128,
    workers: int = 0,
    options: TestConfig = DEFAULTS,
    progress: bool = True,
    desc: str = "extract",
    raw: bool = False,
) -> np.ndarray:
    """Float32 features (N, D) of `records`, in record order.

    L2-normalised (beta = 0) or mixed (beta > 0); with `raw`, the view-averaged embeddings before
    normalisation and mixing (pass them to `finalize_features` later, e.g. for several betas).
    """
    model.eval()
    loader = test_loader(records, EvalTransform(pre), batch_size, workers)
    chunks = []
    for images, *_ in tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False):
        out = view_average(model, images.to(device, non_blocking=True), *options.network_key())
        chunks.append((out if raw else mix_embeddings(out, options.beta)).cpu())
    if not chunks:
        return np.zeros((0, getattr(model, "feature_dim", 0)), np.float32)
    return torch.cat(chunks).numpy().astype(np.float32, copy=False)
