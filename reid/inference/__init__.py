"""Inference-time tools: k-reciprocal re-ranking and query expansion (alpha-QE, DBA)."""

from .query_expansion import alpha_query_expansion, database_side_augmentation
from .rerank import k_reciprocal, k_reciprocal_from_distances, k_reciprocal_in_place

__all__ = [
    "alpha_query_expansion",
    "database_side_augmentation",
    "k_reciprocal",
    "k_reciprocal_from_distances",
    "k_reciprocal_in_place",
]
