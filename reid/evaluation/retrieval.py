"""Retrieval metrics for metric-learning benchmarks (CUB-200-2011, Cars196, SOP, In-Shop).

CUB, Cars and SOP: every test image queries all the others (itself excluded);
In-Shop: its queries against its gallery. Classes are the labels. Recall@K: share
of queries with at least one same-class image among the K nearest. MAP@R
(Musgrave et al., "A Metric Learning Reality Check", 2020): with R the number of
other same-class images, (1/R) * sum over the top R positions i of P@i if
position i is a match. NMI: normalised mutual information between the labels and
a k-means clustering with as many clusters as classes (arithmetic mean of the
entropies, as scikit-learn's default). Ties keep index order. Queries without
another image of their class are skipped (and counted).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .distance import DistanceChunks, auto_chunk_size, to_numpy
from .match_counts import chunk_match_ranks, segment_positions, segment_sums


@dataclass
class RetrievalResult:
    """recall: {K: Recall@K}; map_at_r: MAP@R; nmi: NMI of k-means (None when not computed).

    notes: how the numbers were obtained where that departs from the plain protocol
    (NMI on a sample of the classes, or skipped).
    """

    recall: dict[int, float]
    map_at_r: float
    nmi: float | None
    num_valid: int
    num_skipped: int
    ap_at_r: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {f"recall@{k}": v for k, v in self.recall.items()}
        out.update({"map@r": self.map_at_r, "nmi": self.nmi, "num_valid": self.num_valid})
        out["num_skipped"] = self.num_skipped
        return out


def _check_ks(ks: Sequence[int]) -> list[int]:
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    return ks


def _dense_chunks(distances: np.ndarray, chunk_size: int | None) -> Iterator[tuple[int, np.ndarray]]:
    """Row chunks of a given distance matrix, copied (the caller marks entries NaN)."""
    step = chunk_size or auto_chunk_size(distances.shape[1], 4)
    for s in range(0, distances.shape[0], step):
        yield s, np.array(distances[s : s + step], dtype=np.float32 if distances.dtype != np.float64 else np.float64)


def _row_chunks(
    q: np.ndarray, g: np.ndarray, distances, metric: str, chunk_size: int | None
) -> Iterator[tuple[int, np.ndarray]]:
    """Row chunks of the given (Q, G) `distances` (checked), else of the features' chunked distances."""
    if distances is None:
        return DistanceChunks(q, g, metric).chunks(chunk_size)
    distances = to_numpy(distances)
    if distances.shape != (len(q), len(g)):
        raise ValueError(f"distances must be {len(q)} x {len(g)}, got {distances.shape}")
    return _dense_chunks(distances, chunk_size)


def _score_chunks(chunks, q_labels: np.ndarray, g_labels: np.ndarray, exclude_self: bool):
    """(0-based rank of the first match, AP@R) per query, -1 / NaN for queries without a match."""
    n = len(q_labels)
    first = np.full(n, -1, dtype=np.int64)
    ap_r = np.full(n, np.nan)
    for start, chunk in chunks:
        rows = np.arange(len(chunk))
        same = q_labels[start : start + len(chunk), None] == g_labels[None, :]
        if exclude_self:
            chunk[rows, start + rows] = np.nan  # the query itself
            same[rows, start + rows] = False
        r, c = np.nonzero(same)
        bounds, ranks = chunk_match_ranks(chunk, r, c)
        owner, k, m = segment_positions(bounds)
        found = np.flatnonzero(m > 0)
        first[start + found] = ranks[bounds[found]]
        in_top = np.where(ranks < m[owner], k / (ranks + 1), 0.0)  # MAP@R: hits within the top R = m
        ap_r[start + found] = segment_sums(in_top, owner, len(m))[found] / m[found]
        del chunk, same
    return first, ap_r


def _result(first, ap_r, ks, nmi_value, notes) -> RetrievalResult:
    valid = first >= 0
    if not valid.any():
        raise ValueError("no query has another image of its class")
    recall = {k: float(np.mean(first[valid] < k)) for k in ks}
    num_valid = int(valid.sum())
    return RetrievalResult(recall, float(np.nanmean(ap_r)), nmi_value, num_valid, len(first) - num_valid, ap_r, notes)


def evaluate_retrieval(
    features,
    labels,
    ks: Sequence[int] = (1, 2, 4, 8),
    metric: str = "cosine",
    chunk_size: int | None = None,
    with_nmi: bool = True,
    seed: int = 0,
    distances=None,
    nmi_max_images: int | None = None,
) -> RetrievalResult:
    """Recall@K, MAP@R and (optionally) k-means NMI of (N, D) features with (N,) labels,
    every image querying all the others.

    Distances are computed `chunk_size` rows at a time (default ~64 MiB), never as the full
    N x N matrix; `distances` (N, N), e.g. re-ranked, replaces them (its diagonal is ignored).
    NMI runs on at most `nmi_max_images` images (whole classes, sampled; see sampled_kmeans_nmi).
    """
    feats, labels = to_numpy(features), to_numpy(labels).reshape(-1)
    if len(feats) != len(labels):
        raise ValueError(f"{len(feats)} features but {len(labels)} labels")
    ks = _check_ks(ks)
    chunks = _row_chunks(feats, feats, distances, metric, chunk_size)
    first, ap_r = _score_chunks(chunks, labels, labels, exclude_self=True)
    nmi_value, notes = None, []
    if with_nmi:
        nmi_value, notes = sampled_kmeans_nmi(feats, labels, nmi_max_images, seed, metric == "cosine")
    return _result(first, ap_r, ks, nmi_value, notes)


def evaluate_query_gallery(
    q_feats,
    q_labels,
    g_feats,
    g_labels,
    ks: Sequence[int] = (1, 10, 20, 30, 40, 50),
    metric: str = "cosine",
    chunk_size: int | None = None,
    with_nmi: bool = True,
    seed: int = 0,
    distances=None,
    nmi_max_images: int | None = None,
) -> RetrievalResult:
    """Recall@K and MAP@R of queries against a separate gallery (In-Shop), R the query's
    gallery matches; NMI of k-means on query and gallery together.

    `distances` (Q, G), e.g. re-ranked, replaces the chunked distances of the features.
    """
    q, g = to_numpy(q_feats), to_numpy(g_feats)
    ql, gl = to_numpy(q_labels).reshape(-1), to_numpy(g_labels).reshape(-1)
    if len(q) != len(ql) or len(g) != len(gl):
        raise ValueError(f"{len(q)} query features / {len(ql)} labels, {len(g)} gallery features / {len(gl)} labels")
    ks = _check_ks(ks)
    chunks = _row_chunks(q, g, distances, metric, chunk_size)
    first, ap_r = _score_chunks(chunks, ql, gl, exclude_self=False)
    nmi_value, notes = None, []
    if with_nmi:
        feats, labels = np.concatenate([q, g]), np.concatenate([ql, gl])
        nmi_value, notes = sampled_kmeans_nmi(feats, labels, nmi_max_images, seed, metric == "cosine")
    return _result(first, ap_r, ks, nmi_value, notes)


def sampled_kmeans_nmi(
    features, labels, max_images: int | None = None, seed: int = 0, normalize: bool = True
) -> tuple[float | None, list[str]]:
    """k-means NMI (k = classes) on all images, or on whole classes drawn at random until
    `max_images` images are reached, since k-means with one cluster per class costs
    O(N * classes * D) per iteration (SOP: 60,502 images, 11,316 classes). Returns
    (NMI, notes saying what was sampled); max_images 0: skipped, (None, [note])."""
    labels = to_numpy(labels).reshape(-1)
    if max_images is None or len(labels) <= max_images:
        return kmeans_nmi(features, labels, seed=seed, normalize=normalize), []
    if max_images <= 0:
        return None, [f"NMI skipped ({len(labels):,} images; k-means with one cluster per class is too costly)"]
    classes, counts = np.unique(labels, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(classes))
    keep = order[: max(2, int(np.searchsorted(np.cumsum(counts[order]), max_images, side="right")))]
    mask = np.isin(labels, classes[keep])
    value = kmeans_nmi(to_numpy(features)[mask], labels[mask], seed=seed, normalize=normalize)
    note = (
        f"NMI on {int(mask.sum()):,} of {len(labels):,} images ({len(keep):,} of {len(classes):,} classes "
        f"drawn at random, seed {seed}), k = {len(keep):,}"
    )
    return value, [note]


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


# above this many clusters k-means starts from random points: k-means++ seeding costs O(N k D log k)
# (SOP-sampled, 10,000 x 1,870 x 512: 142 s vs 3.6 s on the loaded 2-core development machine)
KMEANS_PLUS_PLUS_MAX_K = 256


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 300) -> np.ndarray:
    """(N,) cluster ids from scikit-learn's k-means (Lloyd, BLAS distances, one seeded start)."""
    from sklearn.cluster import KMeans

    init = "k-means++" if k <= KMEANS_PLUS_PLUS_MAX_K else "random"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on duplicate points: kept as is
        model = KMeans(k, init=init, n_init=1, max_iter=iters, random_state=seed).fit(x.astype(np.float32))
    return model.labels_


def kmeans_nmi(features, labels, seed: int = 0, normalize: bool = True) -> float:
    """NMI between `labels` and k-means on the (optionally L2-normalised) features, k = number of classes."""
    x = to_numpy(features).astype(np.float64)
    labels = to_numpy(labels).reshape(-1)
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return normalized_mutual_info(labels, kmeans(x, len(np.unique(labels)), seed=seed))
