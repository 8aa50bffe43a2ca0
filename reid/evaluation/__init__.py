"""Ranking metrics for re-ID (CMC, mAP, mINP), retrieval metrics and reports."""

from .distance import pairwise_distances
from .ranking import AP_MODES, RankResult, evaluate_features, evaluate_rank

__all__ = ["AP_MODES", "RankResult", "evaluate_features", "evaluate_rank", "pairwise_distances"]
