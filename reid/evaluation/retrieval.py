"""Retrieval metrics for metric-learning benchmarks (CUB-200-2011, Cars196, SOP).

Every test image queries all the others (itself excluded); classes are the
labels. Recall@K: share of queries with at least one same-class image among the
K nearest. MAP@R (Musgrave et al., "A Metric Learning Reality Check", 2020): with
R the number of other same-class images, (1/R) * sum over the top R positions i
of P@i if position i is a match. NMI: normalised mutual information between the
labels and a k-means clustering with as many clusters as classes (arithmetic
mean of the entropies, as scikit-learn's default). Ties keep index order. Queries
without another image of their class are skipped (and counted).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .distance import DistanceChunks, to_numpy
from .ranks import match_ranks


@dataclass
class RetrievalResult:
    """recall: {K: Recall@K}; map_at_r: MAP@R; nmi: NMI of k-means (None when not asked)."""

    recall: dict[int, float]
    map_at_r: float
    nmi: float | None
    num_valid: int
    num_skipped: int
    ap_at_r: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def as_dict(self) -> dict:
        out = {f"recall@{k}": v for k, v in self.recall.items()}
        out.update({"map@r": self.map_at_r, "nmi": self.nmi, "num_valid": self.num_valid})
        out["num_skipped"] = self.num_skipped
        return out


def evaluate_retrieval(
    features,
    labels,
    ks: Sequence[int] = (1, 2, 4, 8),
    metric: str = "cosine",
    chunk_size: int | None = None,
    with_nmi: bool = True,
    seed: int = 0,
) -> RetrievalResult:
    """Recall@K, MAP@R and (optionally) k-means NMI of (N, D) features with (N,) labels.

    Distances are computed `chunk_size` rows at a time (default ~64 MiB), never as
    the full N x N matrix.
    """
    feats, labels = to_numpy(features), to_numpy(labels).reshape(-1)
    if len(feats) != len(labels):
        raise ValueError(f"{len(feats)} features but {len(labels)} labels")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    n = len(labels)
    first = np.full(n, -1, dtype=np.int64)
    ap_r = np.full(n, np.nan)
    index = np.arange(n)
    for start, chunk in DistanceChunks(feats, feats, metric).chunks(chunk_size):
        rows = np.arange(len(chunk))
        chunk[rows, start + rows] = np.nan  # the query itself
        same = labels[start : start + len(chunk), None] == labels[None, :]
        same[rows, start + rows] = False
        for b, row in enumerate(chunk):
            matches = index[same[b]]
            if matches.size == 0:
                continue
            ranks = match_ranks(row, matches)
            first[start + b] = ranks[0]
            top = ranks[ranks < len(ranks)]
            ap_r[start + b] = np.sum(np.arange(1, len(top) + 1) / (top + 1)) / len(ranks)
        del chunk, row, same
    valid = first >= 0
    if not valid.any():
        raise ValueError("no image has another image of its class")
    recall = {k: float(np.mean(first[valid] < k)) for k in ks}
    nmi_value = kmeans_nmi(feats, labels, seed=seed, normalize=metric == "cosine") if with_nmi else None
    num_valid = int(valid.sum())
    return RetrievalResult(recall, float(np.nanmean(ap_r)), nmi_value, num_valid, n - num_valid, ap_r)


def normalized_mutual_info(labels_true, labels_pred) -> float:
    """NMI from the contingency table: MI / mean(H(true), H(pred)) (natural log; 1.0 when both are constant)."""
    a, b = to_numpy(labels_true).reshape(-1), to_numpy(labels_pred).reshape(-1)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"label arrays must be non-empty and equal in length, got {len(a)} and {len(b)}")
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1)
    p = table / len(a)
    pa, pb = p.sum(1), p.sum(0)
    h_a, h_b = -np.sum(pa * np.log(pa)), -np.sum(pb * np.log(pb))
    if h_a == 0 and h_b == 0:
        return 1.0
    nz = p > 0
    mi = np.sum(p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz]))
    return float(max(mi, 0.0) / ((h_a + h_b) / 2))


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 100) -> np.ndarray:
    """(N,) cluster ids from scipy's k-means (k-means++ start, seeded)."""
    from scipy.cluster.vq import kmeans2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "one of the clusters is empty": kept as is
        _, assign = kmeans2(x.astype(np.float64), k, iter=iters, minit="++", seed=np.random.default_rng(seed))
    return assign


def kmeans_nmi(features, labels, seed: int = 0, normalize: bool = True) -> float:
    """NMI between `labels` and k-means on the (optionally L2-normalised) features, k = number of classes."""
    x = to_numpy(features).astype(np.float64)
    labels = to_numpy(labels).reshape(-1)
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return normalized_mutual_info(labels, kmeans(x, len(np.unique(labels)), seed=seed))
