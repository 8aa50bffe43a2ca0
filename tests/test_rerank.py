"""k-reciprocal re-ranking against a dense, step-by-step NumPy reference of the published port."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reid.inference import k_reciprocal, k_reciprocal_from_distances, k_reciprocal_in_place


def dense_rerank_reference(
    q_g: np.ndarray,
    q_q: np.ndarray,
    g_g: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    dtype: type = np.float32,
) -> np.ndarray:
    """The published port's algorithm (re_ranking of Zhong et al.), dense, one point at a time.

    Takes plain Euclidean distance matrices and squares them, as the port does.
    Holds several N x N float32 matrices: the baseline that tools/bench_rerank.py measures.
    dtype=np.float64 runs every step in float64 (the port rounds to float32 right after squaring).
    """
    nq = q_g.shape[0]
    dist = np.block([[q_q, q_g], [q_g.T, g_g]])
    dist = np.power(dist, 2).astype(dtype)
    dist = np.transpose(dist / np.max(dist, axis=0))  # row i: column i over its maximum
    n = dist.shape[0]
    rank = np.argsort(dist, axis=1).astype(np.int32)

    def reciprocal(i: int, k: int) -> np.ndarray:
        forward = rank[i, : k + 1]
        backward = rank[forward, : k + 1]
        return forward[np.any(backward == i, axis=1)]

    half = int(np.around(k1 / 2.0))
    v = np.zeros((n, n), dtype=dtype)
    for i in range(n):
        r_i = reciprocal(i, k1)
        expanded = [r_i]
        for cand in r_i:
            r_c = reciprocal(int(cand), half)
            if len(np.intersect1d(r_c, r_i)) > 2.0 / 3.0 * len(r_c):
                expanded.append(r_c)
        members = np.unique(np.concatenate(expanded))
        weight = np.exp(-dist[i, members])
        v[i, members] = weight / np.sum(weight)
    if k2 != 1:
        v = np.stack([np.mean(v[rank[i, :k2]], axis=0) for i in range(n)]).astype(dtype)
    jaccard = np.zeros((nq, n), dtype=dtype)
    for i in range(nq):
        shared = np.zeros(n, dtype=dtype)
        for k in np.nonzero(v[i])[0]:
            holders = np.nonzero(v[:, k])[0]
            shared[holders] += np.minimum(v[i, k], v[holders, k])
        jaccard[i] = 1.0 - shared / (2.0 - shared)
    final = jaccard * (1 - lambda_value) + dist[:nq] * lambda_value
    return final[:, nq:]


def clustered(n: int, ids: int, dim: int, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ids, dim))
    x = centres[rng.integers(0, ids, n)] + noise * rng.standard_normal((n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def split(x: np.ndarray, nq: int) -> tuple[np.ndarray, np.ndarray]:
    return x[:nq], x[nq:]


@pytest.mark.parametrize(
    ("n", "nq", "k1", "k2", "lam", "chunk"),
    [
        (180, 30, 20, 6, 0.3, 64),
        (150, 40, 12, 3, 0.0, 50),
        (140, 25, 7, 1, 1.0, 33),
        (120, 10, 5, 4, 0.5, 1000),
        (60, 5, 30, 25, 0.3, 16),  # N < k1 + 1: every point is in every forward set
        (25, 3, 20, 6, 0.3, 7),  # num_query < k1 and N barely above it
    ],
)
def test_feature_form_matches_dense_reference(n: int, nq: int, k1: int, k2: int, lam: float, chunk: int) -> None:
    x = clustered(n, ids=max(3, n // 8), dim=32, noise=0.6, seed=n + k1)
    q, g = split(x, nq)
    expected = dense_rerank_reference(euclidean(q, g), euclidean(q, q), euclidean(g, g), k1, k2, lam)
    got = k_reciprocal(q.astype(np.float32), g.astype(np.float32), k1, k2, lam, device="cpu", chunk_size=chunk)
    assert got.dtype == np.float32 and got.shape == (nq, n - nq)
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)


def test_distance_form_uses_its_input_as_is_and_square_reproduces_the_port() -> None:
    x = clustered(160, ids=20, dim=24, noise=0.5, seed=3)
    q, g = split(x, 35)
    e_qg, e_qq, e_gg = euclidean(q, g), euclidean(q, q), euclidean(g, g)
    expected = dense_rerank_reference(e_qg, e_qq, e_gg, 20, 6, 0.3)
    from_squared = k_reciprocal_from_distances(e_qg**2, e_qq**2, e_gg**2, device="cpu", chunk_size=40)
    from_euclid = k_reciprocal_from_distances(e_qg, e_qq, e_gg, square=True, device="cpu", chunk_size=40)
    np.testing.assert_allclose(from_squared, expected, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(from_euclid, expected, atol=2e-5, rtol=1e-4)
    # Squaring twice (squared distances into the port) is a different, wrong result.
    twice = dense_rerank_reference(e_qg**2, e_qq**2, e_gg**2, 20, 6, 0.3)
    assert np.abs(twice - expected).max() > 1e-3


def test_distance_form_takes_columns_of_asymmetric_input_like_the_port() -> None:
    rng = np.random.default_rng(7)
    nq, ng = 12, 40
    qg = rng.uniform(0.1, 2.0, (nq, ng))
    qq = rng.uniform(0.1, 2.0, (nq, nq))
    gg = rng.uniform(0.1, 2.0, (ng, ng))
    np.fill_diagonal(qq, 0.0)
    np.fill_diagonal(gg, 0.0)
    expected = dense_rerank_reference(qg, qq, gg, 8, 3, 0.3)
    got = k_reciprocal_from_distances(qg, qq, gg, 8, 3, 0.3, square=True, device="cpu", chunk_size=9)
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)


def test_feature_form_equals_distance_form_and_accepts_tensors() -> None:
    x = clustered(130, ids=15, dim=16, noise=0.5, seed=11).astype(np.float32)
    q, g = split(x, 20)
    d = euclidean(x.astype(np.float64), x.astype(np.float64)) ** 2
    by_dist = k_reciprocal_from_distances(d[:20, 20:], d[:20, :20], d[20:, 20:], 10, 4, 0.2, device="cpu")
    q_t, g_t, d_copy = torch.from_numpy(q.copy()), torch.from_numpy(g.copy()), d.copy()
    by_feat = k_reciprocal(q_t, g_t, 10, 4, 0.2, device="cpu")
    np.testing.assert_allclose(by_feat, by_dist, atol=2e-5, rtol=1e-4)
    # Inputs are never modified in place.
    assert np.array_equal(q_t.numpy(), q) and np.array_equal(g_t.numpy(), g) and np.array_equal(d, d_copy)


@pytest.mark.parametrize("normalize", [True, False])
def test_in_place_form_equals_the_pair_form_and_works_in_the_callers_memory(normalize: bool) -> None:
    x = clustered(160, ids=16, dim=24, noise=0.6, seed=9) * np.random.default_rng(9).uniform(0.5, 3.0, (160, 1))
    x = x.astype(np.float32)
    expected = k_reciprocal(x[:30], x[30:], 12, 4, 0.3, normalize=normalize, device="cpu", chunk_size=64)
    joint = torch.from_numpy(x.copy())
    got = k_reciprocal_in_place(joint, 30, 12, 4, 0.3, normalize=normalize, chunk_size=64)
    np.testing.assert_array_equal(got, expected)
    norms = np.linalg.norm(joint.numpy(), axis=1)
    if normalize:  # the caller's tensor now holds the normalised features: no second copy was made
        np.testing.assert_allclose(norms, 1.0, atol=1e-6)
    else:
        np.testing.assert_array_equal(joint.numpy(), x)


def test_in_place_form_refuses_what_it_cannot_work_in() -> None:
    x = torch.rand(20, 4)
    with pytest.raises(ValueError, match="float32 torch tensor"):
        k_reciprocal_in_place(x.numpy(), 5)
    with pytest.raises(ValueError, match="float32 torch tensor"):
        k_reciprocal_in_place(x.double(), 5)
    with pytest.raises(ValueError, match="contiguous"):
        k_reciprocal_in_place(x.t(), 2)
    with pytest.raises(ValueError, match=r"num_query must be in 1\.\.19, got 20"):
        k_reciprocal_in_place(x, 20)


def test_normalize_flag_controls_l2_normalisation() -> None:
    x = clustered(100, ids=10, dim=16, noise=0.5, seed=5)
    scale = np.random.default_rng(5).uniform(0.5, 3.0, (100, 1))
    q, g = split((x * scale).astype(np.float32), 20)
    normalised = k_reciprocal(q, g, 10, 3, 0.3, device="cpu")
    np.testing.assert_allclose(normalised, k_reciprocal(*split(x.astype(np.float32), 20), 10, 3, 0.3), atol=1e-5)
    raw = k_reciprocal(q, g, 10, 3, 0.3, normalize=False, device="cpu")
    qs, gs = split(x * scale, 20)
    expected = dense_rerank_reference(euclidean(qs, gs), euclidean(qs, qs), euclidean(gs, gs), 10, 3, 0.3)
    np.testing.assert_allclose(raw, expected, atol=2e-5, rtol=1e-4)


def test_result_is_independent_of_chunk_size() -> None:
    q, g = split(clustered(300, ids=30, dim=32, noise=0.6, seed=2).astype(np.float32), 50)
    ref = k_reciprocal(q, g, device="cpu", chunk_size=4096)
    for chunk in (37, 64):
        np.testing.assert_allclose(k_reciprocal(q, g, device="cpu", chunk_size=chunk), ref, atol=1e-5)


def test_lambda_one_is_the_normalised_original_distance() -> None:
    q, g = split(clustered(90, ids=9, dim=8, noise=0.4, seed=4), 15)
    d_all = euclidean(np.vstack([q, g]), np.vstack([q, g])) ** 2
    expected = d_all[:15, 15:] / d_all[:15].max(1, keepdims=True)
    got = k_reciprocal(q.astype(np.float32), g.astype(np.float32), lambda_value=1.0, device="cpu")
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_jaccard_part_lies_in_unit_interval_and_ranks_same_identity_first() -> None:
    rng = np.random.default_rng(9)
    centres = rng.standard_normal((10, 64))
    labels = np.repeat(np.arange(10), 12)
    x = centres[labels] + 0.3 * rng.standard_normal((120, 64))
    order = rng.permutation(120)
    x, labels = x[order].astype(np.float32), labels[order]
    jac = k_reciprocal(x[:20], x[20:], 20, 6, 0.0, device="cpu")
    assert jac.min() >= 0.0 and jac.max() <= 1.0 + 1e-6
    nearest = labels[20:][jac.argmin(1)]
    assert (nearest == labels[:20]).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k1": 0}, "k1 and k2"),
        ({"k2": 0}, "k1 and k2"),
        ({"lambda_value": 1.5}, "lambda_value"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_parameters_raise(kwargs: dict, message: str) -> None:
    q, g = split(clustered(30, 3, 4, 0.5, 0).astype(np.float32), 5)
    with pytest.raises(ValueError, match=message):
        k_reciprocal(q, g, device="cpu", **kwargs)


def test_bad_shapes_and_values_raise() -> None:
    q = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="same D"):
        k_reciprocal(q, np.ones((5, 3), np.float32), device="cpu")
    with pytest.raises(ValueError, match="at least one"):
        k_reciprocal(q, np.ones((0, 4), np.float32), device="cpu")
    with pytest.raises(ValueError, match="NaN"):
        k_reciprocal(np.full((3, 4), np.nan, np.float32), np.ones((5, 4), np.float32), device="cpu")
    with pytest.raises(ValueError, match="must be"):
        k_reciprocal_from_distances(np.ones((3, 5)), np.ones((3, 3)), np.ones((4, 4)), device="cpu")
    with pytest.raises(ValueError, match="distance 0"):
        k_reciprocal_from_distances(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2)), device="cpu")


@pytest.mark.parametrize("chunk", [1408, 2048, 700])
def test_blocked_scan_finds_the_exact_nearest_and_maxima(chunk: int) -> None:
    # Blocks of >= 21 strips of 64 columns take the strip-bound path of the scan; 700 the fallbacks.
    from reid.inference.rerank_sources import FeatureSource

    x = clustered(3000, ids=60, dim=24, noise=0.7, seed=21).astype(np.float32)
    src = FeatureSource.from_pair(
        torch.from_numpy(x[:400]), torch.from_numpy(x[400:]), chunk, True, torch.device("cpu")
    )
    near_d, near, rowmax, out = src.scan(21)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    d = euclidean(xn.astype(np.float64), xn.astype(np.float64)) ** 2
    expected = np.sort(d, axis=1)[:, :21]
    np.testing.assert_allclose(near_d.numpy(), expected, atol=2e-5)
    np.testing.assert_allclose(np.take_along_axis(d, near.numpy(), 1), expected, atol=2e-5)
    np.testing.assert_allclose(rowmax.numpy(), d.max(1), atol=2e-5)
    np.testing.assert_allclose(out.numpy(), d[:400, 400:], atol=2e-5)


def test_feature_form_equals_distance_form_with_large_blocks() -> None:
    x = clustered(3000, ids=60, dim=24, noise=0.7, seed=22).astype(np.float32)
    q, g = split(x, 500)
    xn = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float64)
    d = euclidean(xn, xn) ** 2
    by_dist = k_reciprocal_from_distances(d[:500, 500:], d[:500, :500], d[500:, 500:], device="cpu")
    np.testing.assert_allclose(k_reciprocal(q, g, device="cpu", chunk_size=1408), by_dist, atol=2e-5, rtol=1e-4)


def test_pass_thread_count_changes_nothing_and_bad_values_are_refused(monkeypatch) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 24)).astype(np.float32)
    monkeypatch.setenv("REID_RERANK_PASS_THREADS", "1")  # the busy-machine setting; the default is all threads
    one = k_reciprocal(x[:60], x[60:], 10, 3, 0.3, device="cpu", chunk_size=64)
    monkeypatch.setenv("REID_RERANK_PASS_THREADS", "2")
    two = k_reciprocal(x[:60], x[60:], 10, 3, 0.3, device="cpu", chunk_size=64)
    np.testing.assert_allclose(one, two, atol=1e-6)
    monkeypatch.setenv("REID_RERANK_PASS_THREADS", "zero")
    with pytest.raises(ValueError, match="REID_RERANK_PASS_THREADS"):
        k_reciprocal(x[:60], x[60:], device="cpu")


def test_near_ties_across_a_cut_are_ordered_by_float64_and_other_rows_are_left_alone() -> None:
    from reid.inference.rerank_sources import FeatureSource, MatrixSource

    rng = np.random.default_rng(8)
    x = rng.standard_normal((40, 16)).astype(np.float32)
    src = FeatureSource(torch.from_numpy(x.copy()), 10, 64, True)
    xs = src.x.double().numpy()
    d64 = ((xs[:, None, :] - xs[None]) ** 2).sum(-1)
    near = torch.from_numpy(np.argsort(d64, axis=1, kind="stable")[:, :8].copy())
    near_d = torch.from_numpy(np.take_along_axis(d64, near.numpy(), 1).astype(np.float32))
    rowmax = torch.from_numpy(d64.max(1).astype(np.float32))
    truth = near.clone()
    # row 3: the 4th and 5th nearest swapped and given the same float32 distance (a tie across cut 4)
    near[3, [3, 4]] = near[3, [4, 3]]
    near_d[3, 4] = near_d[3, 3]
    # row 5: swapped too, but 10% of its distance apart: a real order the scan gave, not a tie
    near[5, [3, 4]] = near[5, [4, 3]]
    near_d[5, 4] = near_d[5, 3] * 1.1
    given_5 = near[5].clone()
    src.settle_near_ties(near_d, near, rowmax, (4, 6))
    assert torch.equal(near[3], truth[3])
    np.testing.assert_allclose(near_d[3].numpy(), np.take_along_axis(d64[3], truth[3].numpy(), 0), rtol=1e-6)
    assert torch.equal(near[5], given_5)
    others = [r for r in range(40) if r not in (3, 5)]
    assert torch.equal(near[others], truth[others])
    # given distance matrices are exact as given: nothing is reordered
    m = torch.from_numpy(d64.astype(np.float32))
    before = near.clone()
    MatrixSource(m[:10, 10:], m[:10, :10], m[10:, 10:], 64).settle_near_ties(near_d, near, rowmax, (4, 6))
    assert torch.equal(near, before)


def test_rows_already_of_unit_length_are_not_divided_again() -> None:
    from reid.inference.rerank_sources import FeatureSource

    rng = np.random.default_rng(9)
    x = rng.standard_normal((30, 64)).astype(np.float32) * 3
    # Rows of norm 1 + 2^-22 (2 float32 ulps) on any CPU: 16 entries of +-0.25, one of them 0.25 + 2^-20
    # (squares sum to exactly 1 + 2^-21). Dividing them by their norm would change their bits.
    unit = np.zeros((10, 64), np.float32)
    for r in range(10):
        cols = rng.choice(64, 16, replace=False)
        unit[r, cols] = rng.choice([-0.25, 0.25], 16)
        unit[r, cols[0]] = np.copysign(np.float32(0.25 + 2.0**-20), unit[r, cols[0]])
    assert not np.array_equal(unit / np.float32(1 + 2.0**-22), unit)
    x[:10] = unit
    src = FeatureSource(torch.from_numpy(x.copy()), 5, 64, True)
    assert np.array_equal(src.x[:10].numpy(), unit)  # untouched, bit for bit
    np.testing.assert_allclose(np.linalg.norm(src.x.numpy(), axis=1), 1.0, rtol=1e-6)  # the others divided
