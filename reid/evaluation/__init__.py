"""Ranking metrics for re-ID (CMC, mAP, mINP) and retrieval metrics (Recall@K, MAP@R, NMI).

Reports (tables, JSON, CMC plots, ranked-list images) are in reid.evaluation.report,
imported on demand because they need OpenCV and matplotlib.
"""

from .distance import pairwise_distances
from .protocol import PROTOCOLS, Protocol, protocol_for, retrieval_metrics
from .ranking import AP_MODES, RankResult, evaluate_features, evaluate_rank
from .retrieval import (
    RetrievalResult,
    evaluate_query_gallery,
    evaluate_retrieval,
    kmeans_nmi,
    normalized_mutual_info,
    sampled_kmeans_nmi,
)

__all__ = [
    "AP_MODES",
    "PROTOCOLS",
    "Protocol",
    "RankResult",
    "RetrievalResult",
    "evaluate_features",
    "evaluate_query_gallery",
    "evaluate_rank",
    "evaluate_retrieval",
    "kmeans_nmi",
    "normalized_mutual_info",
    "pairwise_distances",
    "protocol_for",
    "retrieval_metrics",
    "sampled_kmeans_nmi",
]
