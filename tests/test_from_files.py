"""reid.inference.from_files (what `reid rerank` calls): ranked lists and metrics from saved feature files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reid.evaluation import evaluate_rank
from reid.evaluation.distance import cosine_distance
from reid.inference.from_files import ranked_lists, rerank_feature_files
from reid.inference.pipeline import retrieval_distance
from reid.io.features import FeatureSet
from reid.test_time import DEFAULTS


def features(n: int, pids: list[int], cams: list[int], seed: int) -> FeatureSet:
    x = np.random.default_rng(seed).standard_normal((n, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return FeatureSet(x, np.array(pids), np.array(cams), [f"{seed}_{i}.jpg" for i in range(n)])


def test_lists_and_metrics_match_the_pipeline_distances(tmp_path):
    q = features(4, [0, 1, 2, 3], [0, 0, 0, 0], seed=1)
    g = features(12, [i % 4 for i in range(12)], [1] * 12, seed=2)
    settings = DEFAULTS.replace(rerank=True, k1=4, k2=2)
    done = rerank_feature_files(q, g, settings, topk=5, out=tmp_path / "rr")
    reranked = retrieval_distance(q.features, g.features, settings)
    lists = json.loads(done.topk_path.read_text())
    assert done.k == 5 and lists == json.loads(json.dumps(ranked_lists(q, g, reranked, 5)))
    assert lists[0]["gallery"] == [g.paths[j] for j in np.argsort(reranked[0], kind="stable")[:5]]
    original = evaluate_rank(cosine_distance(q.features, g.features), q.pids, g.pids, q.camids, g.camids)
    assert done.no_metrics is None and list(done.rows) == ["original", settings.describe_post()]
    assert done.rows["original"]["mAP"] == pytest.approx(original.mAP)
    assert json.loads((tmp_path / "rr" / "metrics.json").read_text()) == done.rows


def test_unlabelled_or_unmatched_files_give_lists_without_metrics(tmp_path):
    q, g = features(3, [-1] * 3, [0] * 3, seed=3), features(5, [-1] * 5, [1] * 5, seed=4)
    done = rerank_feature_files(q, g, DEFAULTS, topk=10, out=tmp_path / "a")
    assert done.k == 5 and done.rows is None and done.no_metrics is None
    assert not (tmp_path / "a" / "metrics.json").exists() and len(json.loads(done.topk_path.read_text())) == 3
    q, g = features(3, [7, 8, 9], [0] * 3, seed=3), features(5, [1, 2, 3, 4, 5], [1] * 5, seed=4)
    done = rerank_feature_files(q, g, DEFAULTS, topk=2, out=tmp_path / "b")  # no query id in the gallery
    assert done.rows is None and done.no_metrics and done.topk_path.is_file()
    assert not (tmp_path / "b" / "metrics.json").exists()
    with pytest.raises(ValueError, match="16-d but gallery features 8-d"):
        rerank_feature_files(q, FeatureSet(g.features[:, :8], g.pids, g.camids, g.paths), DEFAULTS, 2, tmp_path / "c")
