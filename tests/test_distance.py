"""The distance module: each function against a float64 loop, the chunked rows against the whole matrix."""

import numpy as np
import pytest
import torch

from reid.evaluation.distance import (
    DistanceChunks,
    cosine_distance,
    cosine_similarity,
    half_squared_euclidean,
    l2_normalize,
    pairwise_distances,
    squared_euclidean,
    to_tensor,
)
from reid.gemm import matmul_nt


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(4, 6)).astype(np.float32), rng.normal(size=(5, 6)).astype(np.float32)


def test_each_distance_matches_a_float64_loop():
    q, g = _pair()
    q64, g64 = q.astype(np.float64), g.astype(np.float64)
    sq = np.array([[np.sum((a - b) ** 2) for b in g64] for a in q64])
    cos = np.array([[a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in g64] for a in q64])
    np.testing.assert_allclose(squared_euclidean(q, g), sq, rtol=1e-5)
    np.testing.assert_allclose(half_squared_euclidean(q, g), sq / 2, rtol=1e-5)
    np.testing.assert_allclose(cosine_similarity(q, g), cos, atol=1e-6)
    np.testing.assert_allclose(cosine_distance(q, g), 1 - cos, atol=1e-6)


def test_on_unit_vectors_half_squared_euclidean_is_the_cosine_distance():
    q, g = (l2_normalize(x) for x in _pair(1))
    np.testing.assert_allclose(half_squared_euclidean(q, g), cosine_distance(q, g), atol=1e-6)
    np.testing.assert_allclose(cosine_distance(q, g, normalized=True), cosine_distance(q, g), atol=1e-6)
    exact = (1.0 - matmul_nt(torch.from_numpy(q), torch.from_numpy(g))).numpy()  # the product rows() uses
    np.testing.assert_array_equal(cosine_distance(q, g, normalized=True), exact)


@pytest.mark.parametrize("metric", ["cosine", "squared_euclidean", "half_squared_euclidean"])
def test_chunks_equal_the_whole_matrix(metric):
    q, g = _pair(2)
    full = pairwise_distances(q, g, metric)
    got = np.concatenate([rows for _, rows in DistanceChunks(q, g, metric).chunks(3)])
    np.testing.assert_allclose(got, full, rtol=1e-6, atol=1e-6)


def test_euclidean_is_the_old_name_of_squared_euclidean_and_unknown_metrics_fail():
    q, g = _pair(3)
    np.testing.assert_array_equal(pairwise_distances(q, g, "euclidean"), squared_euclidean(q, g))
    with pytest.raises(ValueError, match="unknown metric"):
        pairwise_distances(q, g, "manhattan")


def test_to_tensor_rejects_complex_and_boolean_input():
    with pytest.raises(ValueError, match="x must hold real numbers"):
        to_tensor(np.ones((2, 2), bool), "x")
    assert to_tensor(np.ones((2, 2), np.float64), "x").dtype == torch.float32
    assert to_tensor(np.ones((2, 2), np.float64), "x", keep_float64=True).dtype == torch.float64
