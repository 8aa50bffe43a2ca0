"""Batched feature extraction from records with the Group Loss++ test-time switches (METHOD.md 4)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm import tqdm

from reid.data.datasets.base import Record
from reid.data.loaders import test_loader
from reid.data.transforms import EvalTransform, Preprocess
from reid.errors import ConfigError
from reid.evaluation.distance import l2_normalize

from .tta import view_average


@dataclass(frozen=True)
class TestTimeOptions:
    """The Group Loss++ inference switches (METHOD.md section 4); defaults = plain inference.

    Features are L2-normalised and compared by cosine distance, except with beta > 0: then the
    mixed embedding e = f/|f| + beta * f is kept as it is (normalising it again would give back
    f/|f| exactly and undo the mixing) and compared by half the squared Euclidean distance, which
    equals the cosine distance on unit vectors.
    """

    __test__ = False  # not a pytest test class

    flip: bool = False  # average with the horizontal mirror
    scales: tuple[float, ...] = (1.0,)  # input scales to average over
    pool_lambda: float | None = None  # lambda * max + (1 - lambda) * avg pooling; None: as trained
    leaky_slope: float | None = None  # slope of the last activation instead of ReLU; None: as trained
    beta: float = 0.0  # embedding mixing e = f/|f| + beta * f

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        if not self.scales or any(not (math.isfinite(s) and 0.0 < s <= 4.0) for s in self.scales):
            raise ConfigError(f"test.scales: need one or more scales in (0, 4], got {list(self.scales)}")
        for name in ("pool_lambda", "leaky_slope"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"test.{name}: must be in [0, 1], got {value}")
        if not (math.isfinite(self.beta) and self.beta >= 0.0):
            raise ConfigError(f"test.beta: must be >= 0, got {self.beta}")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def metric(self) -> str:
        """The distance to use (a reid.evaluation.distance metric): cosine for unit-norm features,
        half squared Euclidean when beta > 0."""
        return "half_squared_euclidean" if self.beta > 0 else "cosine"

    def network_key(self) -> tuple:
        """The switches that change the network passes (beta is applied afterwards)."""
        return (self.flip, self.scales, self.pool_lambda, self.leaky_slope)

    def describe(self) -> str:
        parts = ["flip"] if self.flip else []
        if self.scales != (1.0,):
            parts.append("scales=" + ",".join(f"{s:g}" for s in self.scales))
        if self.pool_lambda is not None:
            parts.append(f"pool_lambda={self.pool_lambda:g}")
        if self.leaky_slope is not None:
            parts.append(f"leaky={self.leaky_slope:g}")
        if self.beta:
            parts.append(f"beta={self.beta:g}")
        return "+".join(parts) or "none"


def mix_embeddings(features: torch.Tensor, beta: float = 0.0) -> torch.Tensor:
    """e = f/|f| + beta * f for raw embeddings (N, D); beta = 0 is plain L2 normalisation."""
    unit = l2_normalize(features)
    return unit + beta * features if beta else unit


def finalize_features(raw: np.ndarray, beta: float = 0.0) -> np.ndarray:
    """`mix_embeddings` on a float32 array (N, D) of raw embeddings."""
    return mix_embeddings(torch.from_numpy(np.ascontiguousarray(raw, np.float32)), beta).numpy()


@torch.no_grad()
def embed_batch(
    model: torch.nn.Module, images: torch.Tensor, options: TestTimeOptions = TestTimeOptions()
) -> torch.Tensor:
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
    options: TestTimeOptions = TestTimeOptions(),
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
