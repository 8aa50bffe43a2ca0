"""alpha-QE and DBA against slow float64 loops, plus invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reid.inference import alpha_query_expansion, database_side_augmentation


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def expand_loop(x: np.ndarray, pool: np.ndarray, k: int, alpha: float, self_in_pool: int | None) -> np.ndarray:
    """One feature at a time: itself (weight 1) plus its k - 1 most similar pool rows, weight max(s, 0)**alpha."""
    x, pool = unit(x.astype(np.float64)), unit(pool.astype(np.float64))
    out = np.empty_like(x)
    for i, xi in enumerate(x):
        sims = [(float(xi @ p), j) for j, p in enumerate(pool) if self_in_pool is None or j != i + self_in_pool]
        sims.sort(key=lambda s: -s[0])
        total = xi.copy()
        for s, j in sims[: k - 1]:
            total += (max(s, 0.0) ** alpha if alpha != 0 else 1.0) * pool[j]
        out[i] = total / np.linalg.norm(total)
    return out


def data(seed: int = 0, nq: int = 13, ng: int = 57, dim: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((6, dim))
    x = centres[rng.integers(0, 6, nq + ng)] + 0.7 * rng.standard_normal((nq + ng, dim))
    return x[:nq].astype(np.float32), x[nq:].astype(np.float32)


@pytest.mark.parametrize(("k", "alpha", "chunk"), [(5, 3.0, 7), (10, 0.0, 100), (3, 1.5, 1), (200, 3.0, 16)])
def test_alpha_qe_over_all_features_matches_loop(k: int, alpha: float, chunk: int) -> None:
    q, g = data()
    qn, gn = alpha_query_expansion(q, g, k, alpha, chunk_size=chunk)
    both = np.vstack([q, g])
    expected = expand_loop(both, both, k, alpha, self_in_pool=0)
    np.testing.assert_allclose(qn, expected[: len(q)], atol=1e-5)
    np.testing.assert_allclose(gn, expected[len(q) :], atol=1e-5)


@pytest.mark.parametrize(("k", "alpha"), [(4, 3.0), (8, 0.0)])
def test_alpha_qe_over_gallery_matches_loop_and_dba(k: int, alpha: float) -> None:
    q, g = data(1)
    qn, gn = alpha_query_expansion(q, g, k, alpha, pool="gallery", chunk_size=5)
    np.testing.assert_allclose(qn, expand_loop(q, g, k, alpha, self_in_pool=None), atol=1e-5)
    np.testing.assert_allclose(gn, expand_loop(g, g, k, alpha, self_in_pool=0), atol=1e-5)
    np.testing.assert_allclose(database_side_augmentation(g, k, alpha, chunk_size=9), gn, atol=1e-6)


def test_outputs_are_unit_float32_and_keep_the_input_kind() -> None:
    q, g = data(2)
    qn, gn = alpha_query_expansion(q, g)
    assert qn.dtype == np.float32 and gn.dtype == np.float32 and qn.shape == q.shape and gn.shape == g.shape
    np.testing.assert_allclose(np.linalg.norm(np.vstack([qn, gn]), axis=1), 1.0, atol=1e-6)
    qt, gt = alpha_query_expansion(torch.from_numpy(q), torch.from_numpy(g))
    assert isinstance(qt, torch.Tensor) and isinstance(gt, torch.Tensor)
    np.testing.assert_allclose(qt.numpy(), qn, atol=1e-6)
    dba = database_side_augmentation(torch.from_numpy(g), 5, 3.0)
    assert isinstance(dba, torch.Tensor) and dba.dtype == torch.float32


def test_k_one_only_normalises() -> None:
    q, g = data(3)
    qn, gn = alpha_query_expansion(q * 4.0, g * 0.5, k=1)
    np.testing.assert_allclose(qn, unit(q), atol=1e-6)
    np.testing.assert_allclose(gn, unit(g), atol=1e-6)
    np.testing.assert_allclose(database_side_augmentation(g, k=1), unit(g), atol=1e-6)


def test_expansion_pulls_same_cluster_together() -> None:
    rng = np.random.default_rng(4)
    centres = rng.standard_normal((5, 32))
    labels = np.repeat(np.arange(5), 20)
    x = (centres[labels] + 1.0 * rng.standard_normal((100, 32))).astype(np.float32)
    before = unit(x) @ unit(centres).T
    after = database_side_augmentation(x, k=10, alpha=3.0) @ unit(centres).T
    own = np.arange(100), labels
    assert after[own].mean() > before[own].mean() + 0.05


def test_hand_worked_dba_excludes_the_feature_from_its_own_neighbours() -> None:
    g = np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0]], np.float32)
    out = database_side_augmentation(g, k=2, alpha=2.0)
    # g0: itself + 0.6**2 * g1 = (1.216, 0.288); g2: best other similarity is -0.6 -> weight 0.
    np.testing.assert_allclose(out[0], np.array([1.216, 0.288]) / np.hypot(1.216, 0.288), atol=1e-6)
    np.testing.assert_allclose(out[2], [-1.0, 0.0], atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"k": 0}, "k must"), ({"alpha": -1.0}, "alpha"), ({"chunk_size": 0}, "chunk_size"), ({"pool": "x"}, "pool")],
)
def test_bad_arguments_raise(kwargs: dict, message: str) -> None:
    q, g = data()
    with pytest.raises(ValueError, match=message):
        alpha_query_expansion(q, g, **kwargs)


def test_bad_inputs_raise() -> None:
    q, g = data()
    with pytest.raises(ValueError, match="share D"):
        alpha_query_expansion(q, g[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        database_side_augmentation(np.full((3, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match="non-empty"):
        database_side_augmentation(np.ones(4, np.float32))
