"""The retrieval pipeline: features -> distances -> query expansion / re-ranking -> ranking metrics.

    features     extract_features under the test-time switches (flip, scales, pooling, leaky, beta),
                 cached per network configuration by FeatureBank; snapshot ensembles combined on top
    distances    reid.evaluation.distance (cosine, or half squared Euclidean for beta-mixed features)
    post         alpha-QE / DBA, then k-reciprocal re-ranking
    metrics      reid.evaluation.evaluate_rank (CMC, mAP, mINP)

Every stage takes the one test-time schema, reid.test_time.TestConfig, whole. Used by `reid test`
(reid.inference.evaluation_run), `reid rerank`, the trainer's evaluation and the ablation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from reid.data.datasets.base import Record
from reid.data.transforms import Preprocess
from reid.evaluation import RankResult, evaluate_rank
from reid.evaluation.distance import pairwise_distances
from reid.evaluation.protocol import Protocol, check_rerank_size, retrieval_metrics
from reid.evaluation.retrieval import RetrievalResult
from reid.test_time import DEFAULTS, TestConfig

from .ensemble import combine_features
from .features import extract_features, finalize_features
from .query_expansion import alpha_query_expansion, database_side_augmentation
from .rerank import k_reciprocal

Models = Sequence[tuple[str, torch.nn.Module]]


def expand_queries(q: np.ndarray, g: np.ndarray, settings: TestConfig = DEFAULTS) -> tuple[np.ndarray, np.ndarray]:
    """The query expansion of `settings`: alpha-QE expands queries and gallery alike (neighbours
    from both), DBA only the gallery. Both return L2-normalised features."""
    if settings.qe == "alpha":
        q, g = alpha_query_expansion(q, g, settings.qe_k, settings.qe_alpha)
    elif settings.qe == "dba":
        g = database_side_augmentation(g, settings.qe_k, settings.qe_alpha)
    return q, g


def retrieval_distance(q: np.ndarray, g: np.ndarray, settings: TestConfig = DEFAULTS) -> np.ndarray:
    """(num_q, num_g) distances after query expansion and, if asked, k-reciprocal re-ranking.

    Without beta mixing the features are unit length: cosine distance (re-ranking L2-normalises
    again). With beta > 0 they are used as they are, by half squared Euclidean distance.
    """
    metric = settings.metric
    q, g = expand_queries(q, g, settings)
    if settings.rerank:
        k1, k2, lam = settings.k1, settings.k2, settings.lambda_value
        return k_reciprocal(q, g, k1=k1, k2=k2, lambda_value=lam, normalize=metric == "cosine")
    return pairwise_distances(q, g, metric, normalized=metric == "cosine")


def rank_metrics(distmat: np.ndarray, query: Sequence[Record], gallery: Sequence[Record]) -> RankResult:
    """CMC, mAP and mINP of a query x gallery distance matrix under the Market/Duke protocol."""
    return evaluate_rank(
        distmat,
        np.array([r.pid for r in query]),
        np.array([r.pid for r in gallery]),
        np.array([r.camid for r in query]),
        np.array([r.camid for r in gallery]),
    )


def score_features(
    q: np.ndarray,
    g: np.ndarray,
    query: Sequence[Record],
    gallery: Sequence[Record],
    settings: TestConfig = DEFAULTS,
) -> tuple[RankResult, np.ndarray, float]:
    """(metrics, final distance matrix, seconds spent on QE / re-ranking / distances)."""
    start = time.perf_counter()
    distmat = retrieval_distance(q, g, settings)
    seconds = time.perf_counter() - start
    return rank_metrics(distmat, query, gallery), distmat, seconds


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

    def raw(self, name: str, model: torch.nn.Module, settings: TestConfig) -> tuple[np.ndarray, np.ndarray, float]:
        """(query raw, gallery raw, seconds) of one model under the network switches of `settings`."""
        key = (name, settings.network_key())
        if key not in self._raw:
            kwargs = dict(
                pre=self.pre,
                device=self.device,
                batch_size=self.batch_size,
                workers=self.workers,
                options=settings,
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
        self, models: Models, settings: TestConfig, mode: str = "features"
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Final (query, gallery, seconds); several models are combined by `mode` (features/concat)."""
        qs, gs, seconds = [], [], 0.0
        for name, model in models:
            q_raw, g_raw, spent = self.raw(name, model, settings)
            start = time.perf_counter()
            qs.append(finalize_features(q_raw, settings.beta))
            gs.append(finalize_features(g_raw, settings.beta))
            seconds += spent + time.perf_counter() - start
        if len(models) == 1:
            return qs[0], gs[0], seconds
        start = time.perf_counter()
        normalize = settings.beta == 0
        q, g = combine_features(qs, mode, normalize), combine_features(gs, mode, normalize)
        return q, g, seconds + time.perf_counter() - start

    def evaluate(
        self, models: Models, settings: TestConfig, mode: str = "features"
    ) -> tuple[RankResult, np.ndarray, float, float]:
        """The whole pipeline for one setting: (metrics, distances, extraction seconds, post seconds)."""
        q, g, extract_s = self.features(models, settings, mode)
        result, distmat, post_s = score_features(q, g, self.query, self.gallery, settings)
        return result, distmat, extract_s, post_s


def evaluate_model(
    model: torch.nn.Module,
    query: Sequence[Record],
    gallery: Sequence[Record],
    pre: Preprocess,
    device: torch.device | str,
    batch_size: int = 128,
    workers: int = 0,
    settings: TestConfig = DEFAULTS,
    progress: bool = True,
) -> RankResult:
    """Rank-k, mAP and mINP of `model` on `query` against `gallery` under `settings` (no cache)."""
    kwargs = dict(pre=pre, device=device, batch_size=batch_size, workers=workers, options=settings, progress=progress)
    q = extract_features(model, query, desc="query", **kwargs)
    g = extract_features(model, gallery, desc="gallery", **kwargs)
    return rank_metrics(retrieval_distance(q, g, settings), query, gallery)


def score_retrieval(
    q: np.ndarray,
    g: np.ndarray,
    query: Sequence[Record],
    gallery: Sequence[Record],
    protocol: Protocol,
    settings: TestConfig = DEFAULTS,
    with_nmi: bool = True,
    seed: int = 0,
) -> tuple[RetrievalResult, float]:
    """(Recall@K / MAP@R / NMI under a retrieval `protocol`, seconds spent on QE / re-ranking / metrics).

    For "all-vs-all", `query` is `gallery` (one test list) and q, g the same features. Without
    re-ranking no distance matrix is held whole; re-ranking builds it dense (size-checked first).
    """
    start = time.perf_counter()
    metric = settings.metric
    q, g = expand_queries(q, g, settings)
    distances = None
    if settings.rerank:
        check_rerank_size(len(q), len(g))
        k1, k2, lam = settings.k1, settings.k2, settings.lambda_value
        distances = k_reciprocal(q, g, k1=k1, k2=k2, lambda_value=lam, normalize=metric == "cosine")
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
    settings: TestConfig = DEFAULTS,
    progress: bool = True,
    with_nmi: bool = True,
) -> RetrievalResult:
    """Recall@K, MAP@R (and NMI) of `model` under a retrieval protocol; an all-vs-all split
    (`gallery is query`) is extracted once."""
    bank = FeatureBank(query, gallery, pre, device, batch_size=batch_size, progress=progress)
    q, g, _ = bank.features([("model", model)], settings)
    return score_retrieval(q, g, query, gallery, protocol, settings, with_nmi=with_nmi)[0]
