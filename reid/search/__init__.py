"""Large-gallery search (faiss indexes) and re-ranking fed by k-nearest-neighbour lists."""

from .index import KINDS, GalleryIndex, build_from_feature_file, model_key
from .rerank_knn import KnnLists, dense_with_rest, k_reciprocal_from_lists, knn_lists, rerank_knn

__all__ = [
    "KINDS",
    "GalleryIndex",
    "KnnLists",
    "build_from_feature_file",
    "dense_with_rest",
    "k_reciprocal_from_lists",
    "knn_lists",
    "model_key",
    "rerank_knn",
]
