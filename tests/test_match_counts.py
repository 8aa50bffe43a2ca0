"""The compiled chunk ranking equals a stable argsort, with ties, junk and queries without matches."""

from __future__ import annotations

import numpy as np
import pytest

from reid.evaluation import evaluate_rank
from reid.evaluation.match_counts import chunk_match_ranks
from reid.evaluation.retrieval import evaluate_retrieval


def _argsort_ranks(row: np.ndarray, matches: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(row)
    order = np.argsort(np.where(valid, row, np.inf), kind="stable")
    pos = np.empty(len(row), np.int64)
    pos[order] = np.arange(len(row))
    return np.sort(pos[matches])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunk_ranks_equal_stable_argsort_with_ties_and_nan(dtype):
    rng = np.random.default_rng(0)
    d = rng.integers(0, 15, (40, 200)).astype(dtype)  # many exact ties
    d[rng.random(d.shape) < 0.15] = np.nan
    rows, cols = [], []
    for b in range(40):
        c = rng.choice(200, int(rng.integers(0, 8)), replace=False)
        c = c[~np.isnan(d[b, c])]
        rows += [b] * len(c)
        cols += list(c)
    start, ranks = chunk_match_ranks(d, np.array(rows, np.int64), np.array(cols, np.int64))
    rows, cols = np.array(rows), np.array(cols)
    for b in range(40):
        got = ranks[start[b] : start[b + 1]]
        m = cols[rows == b]
        if m.size == 0:
            assert got.size == 0
        else:
            np.testing.assert_array_equal(got, _argsort_ranks(d[b], m))


def _reference_rank(distmat, q_pids, g_pids, q_cams, g_cams, junk):
    """Classic per-query loop: stable argsort, drop junk and same id + camera."""
    aps, inps, firsts = [], [], []
    for i in range(len(q_pids)):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_cams[order] == q_cams[i])) & ~junk[order]
        match = (g_pids[order] == q_pids[i])[keep]
        if not match.any():
            continue
        hits = np.flatnonzero(match)
        firsts.append(hits[0])
        aps.append(np.mean(np.arange(1, len(hits) + 1) / (hits + 1)))
        inps.append(len(hits) / (hits[-1] + 1))
    return np.array(firsts), float(np.mean(aps)), float(np.mean(inps))


def test_evaluate_rank_matches_argsort_loop_with_ties_junk_and_unmatched_queries():
    rng = np.random.default_rng(1)
    nq, ng = 60, 300
    q_pids, g_pids = rng.integers(0, 25, nq), rng.integers(-1, 20, ng)  # pids 20-24: no gallery match
    q_cams, g_cams = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    distmat = rng.integers(0, 10, (nq, ng)).astype(np.float32)
    junk = g_pids == -1
    firsts, m_ap, m_inp = _reference_rank(distmat, q_pids, g_pids, q_cams, g_cams, junk)
    res = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=10, chunk_size=7)
    assert res.num_valid == len(firsts) and res.num_skipped == nq - len(firsts) > 0
    assert res.mAP == pytest.approx(m_ap, abs=1e-12)
    assert res.mINP == pytest.approx(m_inp, abs=1e-12)
    np.testing.assert_allclose(res.cmc, [np.mean(firsts <= r) for r in range(10)])


def test_retrieval_map_at_r_matches_argsort_with_ties():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 12, 80)
    feats = rng.standard_normal((80, 4)).astype(np.float32)
    dist = rng.integers(0, 6, (80, 80)).astype(np.float32)
    res = evaluate_retrieval(feats, labels, ks=(1, 4), with_nmi=False, distances=dist, chunk_size=9)
    aps, firsts = [], []
    for i in range(80):
        row = dist[i].copy()
        row[i] = np.nan
        m = np.flatnonzero((labels == labels[i]) & (np.arange(80) != i))
        if m.size == 0:
            continue
        ranks = _argsort_ranks(row, m)
        firsts.append(ranks[0])
        top = ranks[ranks < len(m)]
        aps.append(np.sum(np.arange(1, len(top) + 1) / (top + 1)) / len(m))
    assert res.map_at_r == pytest.approx(np.mean(aps), abs=1e-12)
    assert res.recall[4] == pytest.approx(np.mean(np.array(firsts) < 4))


@pytest.mark.parametrize("where", ["closest", "farthest"])  # few entries to search / many: the two strategies
def test_both_strategies_give_the_argsort_ranks(where):
    rng = np.random.default_rng(3)
    d = np.round(rng.random((30, 500)), 2).astype(np.float32)  # ties
    d[:, ::7] = np.nan
    order = np.argsort(np.where(np.isnan(d), np.inf, d), axis=1, kind="stable")
    valid = (~np.isnan(d)).sum(1)
    rows, cols = [], []
    for b in range(30):
        pick = order[b, :5] if where == "closest" else order[b, valid[b] - 5 : valid[b]]
        rows += [b] * 5
        cols += list(pick)
    start, ranks = chunk_match_ranks(d, np.array(rows), np.array(cols))
    for b in range(30):
        np.testing.assert_array_equal(
            ranks[start[b] : start[b + 1]], _argsort_ranks(d[b], np.array(cols[5 * b : 5 * b + 5]))
        )
