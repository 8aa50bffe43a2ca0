"""Ranking metrics for re-ID (CMC, mAP, mINP) and retrieval metrics."""

from .ranking import RankResult, evaluate_rank

__all__ = ["RankResult", "evaluate_rank"]
