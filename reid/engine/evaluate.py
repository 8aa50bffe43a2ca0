"""Evaluate a model on a query/gallery split: extract (cached), post-process, compare, rank."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from reid.data.datasets.base import Record
from reid.data.transforms import Preprocess
from reid.errors import ConfigError
from reid.evaluation import RankResult, evaluate_rank
from reid.evaluation.protocol import Protocol, check_rerank_size, retrieval_metrics
from reid.evaluation.retrieval import RetrievalResult
from reid.inference.ensemble import combine_features
from reid.inference.features import TestTimeOptions, extract_features, finalize_features, pairwise_distance

QE_MODES = ("none", "alpha", "dba")


@dataclass(frozen=True)
class PostProcess:
    """What happens between features and ranking: query expansion, then k-reciprocal re-ranking."""

    qe: str = "none"  # none | alpha (alpha-QE, queries and gallery) | dba (database-side augmentation)
    qe_k: int = 10  # neighbours averaged, the feature itself included
    qe_alpha: float = 3.0  # similarity exponent of the weights
    rerank: bool = False
    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3  # weight of the original distance

    def __post_init__(self) -> None:
        if self.qe not in QE_MODES:
            raise ConfigError(f"test.qe: unknown {self.qe!r} (none, alpha or dba)")
        if self.qe_k < 1 or self.qe_alpha < 0:
            raise ConfigError(f"test.qe_k must be >= 1 and test.qe_alpha >= 0, got {self.qe_k}, {self.qe_alpha}")
        if self.k1 < 1 or self.k2 < 1 or not 0.0 <= self.lambda_value <= 1.0:
            raise ConfigError("test.k1 and test.k2 must be >= 1 and test.lambda_value in [0, 1]")

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        parts = [f"qe={self.qe}(k={self.qe_k},a={self.qe_alpha:g})"] if self.qe != "none" else []
        if self.rerank:
            parts.append(f"rerank(k1={self.k1},k2={self.k2},l={self.lambda_value:g})")
        return "+".join(parts) or "none"


def expand_queries(q: np.ndarray, g: np.ndarray, post: PostProcess) -> tuple[np.ndarray, np.ndarray]:
    """Apply the query expansion of `post`: alpha-QE expands queries and gallery alike (neighbours
    from both), DBA only the gallery. Both return L2-normalised features."""
    if post.qe == "alpha":
        from reid.inference.query_expansion import alpha_query_expansion

        q, g = alpha_query_expansion(q, g, post.qe_k, post.qe_alpha)
    elif post.qe == "dba":
        from reid.inference.query_expansion import database_side_augmentation

        g = database_side_augmentation(g, post.qe_k, post.qe_alpha)
    return q, g


def retrieval_distance(q: np.ndarray, g: np.ndarray, metric: str = "cosine", post: PostProcess = PostProcess()):
    """(num_q, num_g) distances after query expansion and, if asked, k-reciprocal re-ranking.

    Re-ranking works on squared Euclidean distances; with metric "euclidean" (beta-mixed
    features) the features are used as they are, otherwise L2-normalised first.
    """
    q, g = expand_queries(q, g, post)
    if post.rerank:
        from reid.inference.rerank import k_reciprocal

        return k_reciprocal(q, g, k1=post.k1, k2=post.k2, lambda_value=post.lambda_value, normalize=metric == "cosine")
    return pairwise_distance(q, g, metric)


def rank_metrics(distmat: np.ndarray, query: Sequence[Record], gallery: Sequence[Record]) -> RankResult:
    return evaluate_rank(
        distmat,
        np.array([r.pid for r in query]),
        np.array([r.pid for r in gallery]),
        np.array([r.camid for r in query]),
        np.array([r.camid for r in gallery]),
    )


class FeatureBank:
    """Query/gallery features of named models, computed once per network configuration.

    Raw (view-averaged, unnormalised) features are cached under (model name, flip, scales,
    pool_lambda, leaky_slope); beta mixing and ensembling are applied on top, so e.g. the
    baseline, beta mixing, QE and re-ranking share one extraction. Each entry keeps the seconds
    its extraction took, charged to every setting that uses it.
    """

    def __init__(
        self,
        query: Sequence[Record],
        gallery: Sequence[Record],
        pre: Preprocess,
        device: torch.device | str = "cpu",
        batch_size: int = 128,
        workers: int = 0,
        progress: bool = True,
    ) -> None:
        self.query, self.gallery, self.pre, self.device = query, gallery, pre, device
        self.batch_size, self.workers, self.progress = batch_size, workers, progress
        self._raw: dict[tuple, tuple[np.ndarray, np.ndarray, float]] = {}

    @torch.no_grad()
    def warm_up(self, models: Sequence[torch.nn.Module]) -> None:
        """One untimed forward pass per model, so that the first timed setting pays no start-up cost."""
        for model in models:
            model.eval()(torch.zeros(2, 3, self.pre.height, self.pre.width, device=self.device))

    def raw(self, name: str, model: torch.nn.Module, options: TestTimeOptions) -> tuple[np.ndarray, np.ndarray, float]:
        """(query raw, gallery raw, seconds) of one model under the network switches of `options`."""
        key = (name, options.network_key())
        if key not in self._raw:
            kwargs = dict(
                pre=self.pre,
                device=self.device,
                batch_size=self.batch_size,
                workers=self.workers,
                options=options,
                progress=self.progress,
                raw=True,
            )
            start = time.perf_counter()
            q = extract_features(model, self.query, desc="query", **kwargs)
            # the all-vs-all retrieval protocol passes one list as query and gallery: extract it once
            g = q if self.gallery is self.query else extract_features(model, self.gallery, desc="gallery", **kwargs)
            self._raw[key] = (q, g, time.perf_counter() - start)
        return self._raw[key]

    def features(
        self, models: Sequence[tuple[str, torch.nn.Module]], options: TestTimeOptions, mode: str = "features"
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Final (query, gallery, seconds); several models are combined by `mode` (features/concat)."""
        qs, gs, seconds = [], [], 0.0
        for name, model in models:
            q_raw, g_raw, spent = self.raw(name, model, options)
            start = time.perf_counter()
            qs.append(finalize_features(q_raw, options.beta))
            gs.append(finalize_features(g_raw, options.beta))
            seconds += spent + time.perf_counter() - start
        if len(models) == 1:
            return qs[0], gs[0], seconds
        start = time.perf_counter()
        normalize = options.beta == 0
        q, g = combine_features(qs, mode, normalize), combine_features(gs, mode, normalize)
        return q, g, seconds + time.perf_counter() - start


def score_features(
    q: np.ndarray,
    g: np.ndarray,
    query: Sequence[Record],
    gallery: Sequence[Record],
    metric: str = "cosine",
    post: PostProcess = PostProcess(),
) -> tuple[RankResult, np.ndarray, float]:
    """(metrics, final distance matrix, seconds spent on QE / re-ranking / distances)."""
    start = time.perf_counter()
    distmat = retrieval_distance(q, g, metric, post)
    seconds = time.perf_counter() - start
    return rank_metrics(distmat, query, gallery), distmat, seconds


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
    post: PostProcess = PostProcess(),
) -> RankResult:
    """Rank-k, mAP and mINP of `model` on `query` against `gallery` under `options` and `post`."""
    kwargs = dict(pre=pre, device=device, batch_size=batch_size, workers=workers, options=options, progress=progress)
    q = extract_features(model, query, desc="query", **kwargs)
    g = extract_features(model, gallery, desc="gallery", **kwargs)
    return rank_metrics(retrieval_distance(q, g, options.metric, post), query, gallery)


def score_retrieval(
    q: np.ndarray,
    g: np.ndarray,
    query: Sequence[Record],
    gallery: Sequence[Record],
    protocol: Protocol,
    metric: str = "cosine",
    post: PostProcess = PostProcess(),
    with_nmi: bool = True,
    seed: int = 0,
) -> tuple[RetrievalResult, float]:
    """(Recall@K / MAP@R / NMI under a retrieval `protocol`, seconds spent on QE / re-ranking / metrics).

    For "all-vs-all", `query` is `gallery` (one test list) and q, g the same features. Without
    re-ranking no distance matrix is held whole; re-ranking builds it dense (size-checked first).
    """
    start = time.perf_counter()
    q, g = expand_queries(q, g, post)
    distances = None
    if post.rerank:
        from reid.inference.rerank import k_reciprocal

        check_rerank_size(len(q), len(g))
        distances = k_reciprocal(
            q, g, k1=post.k1, k2=post.k2, lambda_value=post.lambda_value, normalize=metric == "cosine"
        )
    q_labels, g_labels = np.array([r.pid for r in query]), np.array([r.pid for r in gallery])
    result = retrieval_metrics(protocol, q, q_labels, g, g_labels, metric, distances, with_nmi=with_nmi, seed=seed)
    return result, time.perf_counter() - start


def evaluate_model_retrieval(
    model: torch.nn.Module,
    protocol: Protocol,
    query: Sequence[Record],
    gallery: Sequence[Record],
    pre: Preprocess,
    device: torch.device | str,
    batch_size: int = 128,
    workers: int = 0,
    options: TestTimeOptions = TestTimeOptions(),
    progress: bool = True,
    with_nmi: bool = True,
) -> RetrievalResult:
    """Recall@K, MAP@R (and NMI) of `model` under a retrieval protocol; an all-vs-all split
    (`gallery is query`) is extracted once."""
    bank = FeatureBank(query, gallery, pre, device, batch_size=batch_size, workers=workers, progress=progress)
    q, g, _ = bank.features([("model", model)], options)
    return score_retrieval(q, g, query, gallery, protocol, options.metric, with_nmi=with_nmi)[0]
