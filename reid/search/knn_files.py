"""`reid rerank --knn`: re-ranking from k-NN lists between two feature files, written like the dense path.

Same files as reid.inference.from_files: OUT/topk.json and, with pids on both sides and below
DENSE_METRICS query x gallery pairs, OUT/metrics.json (the re-ranked candidates first, the rest of
the gallery after them in its original order: dense_with_rest).
"""

from __future__ import annotations

import json
from pathlib import Path

from reid.evaluation.distance import cosine_distance
from reid.inference.from_files import RerankFiles, score_into
from reid.inference.pipeline import expand_queries
from reid.io.atomic import write_text
from reid.io.features import FeatureSet
from reid.test_time import TestConfig

from .rerank_knn import dense_with_rest, rerank_knn

DENSE_METRICS = 2**28  # largest query x gallery matrix built to score the lists (1 GiB)


def rerank_knn_feature_files(
    q: FeatureSet,
    g: FeatureSet,
    settings: TestConfig,
    knn: int,
    kind: str,
    nprobe: int | None,
    topk: int,
    out: str | Path,
) -> RerankFiles:
    """QE as `settings` ask, then k-reciprocal re-ranking of every query's `knn` nearest (lists of `kind`)."""
    qf, gf = expand_queries(q.features, g.features, settings)
    idx, dist = rerank_knn(qf, gf, knn, settings.k1, settings.k2, settings.lambda_value, kind=kind, nprobe=nprobe)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    k = min(topk, idx.shape[1])
    lists = [
        {
            "query": q.paths[i],
            "gallery": [g.paths[j] for j in row[:k] if j >= 0],
            "distance": [float(x) for j, x in zip(row[:k], d[:k]) if j >= 0],
        }
        for i, (row, d) in enumerate(zip(idx, dist))
    ]
    write_text(folder / "topk.json", json.dumps(lists, indent=1))
    result = RerankFiles(folder / "topk.json", k, None)
    if not ((q.pids >= 0).any() and (g.pids >= 0).any()):
        return result
    if len(q) * len(g) > DENSE_METRICS:
        result.no_metrics = f"{len(q):,} x {len(g):,} is too large for a dense matrix; score the lists in Python"
        return result
    original = cosine_distance(q.features, g.features, normalized=True)
    reranked = dense_with_rest(idx, dist, original.copy())
    name = settings.describe_post() + f"+knn({knn},{kind})"
    return score_into(result, folder, q, g, {"original": original, name: reranked})
