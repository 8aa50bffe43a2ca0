"""The retrieval pipeline's post-processing: option checks and how features reach QE and re-ranking."""

import numpy as np
import pytest

from reid.errors import ConfigError
from reid.evaluation.distance import half_squared_euclidean
from reid.inference.pipeline import retrieval_distance
from reid.inference.query_expansion import alpha_query_expansion, database_side_augmentation
from reid.inference.rerank import k_reciprocal
from reid.test_time import TestConfig


def features(seed: int):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=(9, 8)).astype(np.float32)


def test_without_post_processing_it_is_the_plain_distance():
    q, g = features(0)
    np.testing.assert_array_equal(retrieval_distance(q, g, TestConfig(beta=0.001)), half_squared_euclidean(q, g))


def test_rerank_keeps_beta_mixed_features_as_they_are_and_normalises_otherwise():
    q, g = features(1)
    post = TestConfig(rerank=True, k1=3, k2=2)
    mixed = retrieval_distance(q, g, post.replace(beta=0.001))
    np.testing.assert_allclose(mixed, k_reciprocal(q, g, 3, 2, normalize=False))
    np.testing.assert_allclose(retrieval_distance(q, g, post), k_reciprocal(q, g, 3, 2))
    assert not np.allclose(k_reciprocal(q, g, 3, 2, normalize=False), k_reciprocal(q, g, 3, 2))


def test_alpha_qe_expands_both_sides_and_dba_only_the_gallery():
    q, g = features(2)
    qa, ga = alpha_query_expansion(q, g, 3, 1.0)
    got = retrieval_distance(q, g, TestConfig(qe="alpha", qe_k=3, qe_alpha=1.0))
    np.testing.assert_allclose(got, 1 - qa @ ga.T, atol=1e-6)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gd = database_side_augmentation(g, 3, 1.0)
    got = retrieval_distance(qn, g, TestConfig(qe="dba", qe_k=3, qe_alpha=1.0))
    np.testing.assert_allclose(got, 1 - qn @ gd.T, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(qe="beta"), "test.qe: expected one of none, alpha, dba, got 'beta'"),
        (dict(qe_k=0), "test.qe_k: expected >= 1"),
        (dict(k2=0), "test.k2: expected >= 1"),
        (dict(lambda_value=1.5), "test.lambda_value: expected 0.0..1.0"),
        (dict(ensemble_mode="vote"), "test.ensemble_mode: expected one of weights, features, concat"),
        (dict(ranked_lists=-1), "test.ranked_lists: expected >= 0"),
    ],
)
def test_bad_post_options_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TestConfig(**kwargs)


def test_describe():
    assert TestConfig().describe_post() == "none"
    assert TestConfig(qe="dba", rerank=True).describe_post() == "qe=dba(k=10,a=3)+rerank(k1=20,k2=6,l=0.3)"
