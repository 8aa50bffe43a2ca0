"""Large-gallery search (faiss indexes) and re-ranking fed by k-nearest-neighbour lists."""

from .index import KINDS, GalleryIndex, build_from_feature_file, model_key

__all__ = ["KINDS", "GalleryIndex", "build_from_feature_file", "model_key"]
