"""Retrieval from saved feature files (what `reid rerank` does): no model, no images.

The query x gallery distances after QE / re-ranking (reid.inference.pipeline.retrieval_distance),
the top-k ranked list of every query (topk.json) and, when both files carry pids, the metrics of
the original cosine ranking next to the re-ranked one (metrics.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reid.evaluation import evaluate_rank
from reid.evaluation.distance import cosine_distance
from reid.io.atomic import write_text
from reid.io.features import FeatureSet
from reid.test_time import TestConfig

from .pipeline import retrieval_distance


@dataclass
class RerankFiles:
    """What `rerank_feature_files` wrote: the ranked lists, and the metric rows or why there are none."""

    topk_path: Path
    k: int
    rows: dict[str, dict] | None  # {"original": ..., settings.describe_post(): ...}; None without pids
    no_metrics: str | None = None  # the reason labelled files still gave no metrics


def ranked_lists(q: FeatureSet, g: FeatureSet, distmat: np.ndarray, k: int) -> list[dict]:
    """The k nearest gallery paths (and distances) of every query, nearest first, ties by gallery order."""
    order = np.argsort(distmat, axis=1, kind="stable")[:, :k]
    return [
        {"query": q.paths[i], "gallery": [g.paths[j] for j in row], "distance": [float(distmat[i, j]) for j in row]}
        for i, row in enumerate(order)
    ]


def rerank_feature_files(q: FeatureSet, g: FeatureSet, settings: TestConfig, topk: int, out: str | Path) -> RerankFiles:
    """Re-rank q x g under `settings`; writes OUT/topk.json and, with pids on both sides, OUT/metrics.json."""
    if q.features.shape[1] != g.features.shape[1]:
        raise ValueError(f"query features are {q.features.shape[1]}-d but gallery features {g.features.shape[1]}-d")
    original = cosine_distance(q.features, g.features, normalized=True)
    reranked = retrieval_distance(q.features, g.features, settings)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    k = min(topk, len(g))
    write_text(folder / "topk.json", json.dumps(ranked_lists(q, g, reranked, k), indent=1))
    result = RerankFiles(folder / "topk.json", k, None)
    if not ((q.pids >= 0).any() and (g.pids >= 0).any()):
        return result
    return score_into(result, folder, q, g, {"original": original, settings.describe_post(): reranked})


def score_into(
    result: RerankFiles, folder: Path, q: FeatureSet, g: FeatureSet, matrices: dict[str, np.ndarray]
) -> RerankFiles:
    """Metrics of each named (Q, G) distance matrix into `result` and FOLDER/metrics.json."""
    rows = {}
    try:
        for name, dist in matrices.items():
            rows[name] = evaluate_rank(dist, q.pids, g.pids, q.camids, g.camids).as_dict()
    except ValueError as exc:  # e.g. no query id in the gallery: the lists stand, the scores do not
        result.no_metrics = str(exc)
        return result
    write_text(folder / "metrics.json", json.dumps(rows, indent=2))
    result.rows = rows
    return result
