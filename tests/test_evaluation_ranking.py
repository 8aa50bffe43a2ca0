"""evaluate_rank / evaluate_features against a plain per-query float64 loop and hand-worked cases."""

import numpy as np
import pytest

from reid.evaluation import evaluate_features, evaluate_rank, pairwise_distances
from reid.evaluation.ranks import match_ranks


def reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50, junk=None, ap_mode="standard",
              sgs=False, num_repeats=10, seed=0):  # fmt: skip
    """The protocol written out one query at a time, with Python sorting and float64."""
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    uniq = np.unique(g_pids)
    cmcs, aps, inps, skipped = [], [], [], 0
    for i in range(num_q):

        def ok(j, i=i):
            if g_pids[j] == -1 or (junk is not None and junk[i, j]):
                return False
            return not (g_pids[j] == q_pids[i] and g_camids[j] == q_camids[i])

        row = [float(x) for x in distmat[i]]
        keep = [j for j in sorted(range(num_g), key=lambda j: (row[j], j)) if ok(j)]
        rel = [g_pids[j] == q_pids[i] for j in keep]
        ngood = sum(rel)
        if ngood == 0:
            skipped += 1
            continue
        hit, ap, old_recall, old_prec = 0, 0.0, 0.0, 1.0
        for pos, r in enumerate(rel):
            hit += r
            prec = hit / (pos + 1)
            if ap_mode == "standard":
                ap += prec / ngood if r else 0.0
            else:  # Market-1501 MATLAB compute_AP
                recall = hit / ngood
                ap += (recall - old_recall) * (old_prec + prec) / 2
                old_recall, old_prec = recall, prec
        aps.append(ap)
        positions = [p for p, r in enumerate(rel) if r]
        inps.append(ngood / (positions[-1] + 1))
        if not sgs:
            cmcs.append([1.0 if positions[0] <= k else 0.0 for k in range(max_rank)])
            continue
        u = np.random.default_rng([seed, i]).random((num_repeats, len(uniq)))
        cmc = np.zeros(max_rank)
        for rep in range(num_repeats):
            drawn = []
            for c, pid in enumerate(uniq):
                members = [j for j in range(num_g) if g_pids[j] == pid and ok(j)]
                if members:
                    drawn.append(members[int(np.floor(u[rep, c] * len(members)))])
            drawn.sort(key=lambda j: (row[j], j))
            rank = [g_pids[j] == q_pids[i] for j in drawn].index(True)
            cmc += [1.0 if rank <= k else 0.0 for k in range(max_rank)]
        cmcs.append(cmc / num_repeats)
    return np.mean(cmcs, axis=0), np.mean(aps), np.mean(inps), len(aps), skipped


def random_problem(seed, num_q=30, num_g=80, num_ids=8, num_cams=3, integer=False, dtype=np.float32):
    rng = np.random.default_rng(seed)
    g_pids = rng.integers(0, num_ids, num_g)  # pid 0 = distractors
    g_pids[rng.random(num_g) < 0.1] = -1  # junk
    q_pids = rng.integers(1, num_ids + 2, num_q)  # some ids absent from the gallery
    q_camids, g_camids = rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g)
    dist = rng.integers(0, 6, (num_q, num_g)) if integer else rng.random((num_q, num_g))
    return dist.astype(dtype), q_pids, g_pids, q_camids, g_camids


def assert_same(result, ref):
    cmc, m_ap, m_inp, valid, skipped = ref
    np.testing.assert_allclose(result.cmc, cmc, rtol=0, atol=1e-12)
    assert result.mAP == pytest.approx(m_ap, abs=1e-12)
    assert result.mINP == pytest.approx(m_inp, abs=1e-12)
    assert (result.num_valid, result.num_skipped) == (valid, skipped)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("ap_mode", ["standard", "trapezoid"])
def test_matches_reference_loop_on_random_problems(seed, integer, ap_mode):
    dtype = np.float64 if seed % 2 else np.float32
    d, qp, gp, qc, gc = random_problem(seed, integer=integer, dtype=dtype)
    result = evaluate_rank(d, qp, gp, qc, gc, max_rank=10, ap_mode=ap_mode, chunk_size=7)
    assert result.num_skipped > 0  # ids 8, 9 are not in the gallery
    assert_same(result, reference(d, qp, gp, qc, gc, 10, ap_mode=ap_mode))


@pytest.mark.parametrize("seed", range(3))
def test_many_matches_path_matches_reference(seed):
    """More than 24 matches per query switches to sorting the candidates."""
    d, qp, gp, qc, gc = random_problem(seed, num_q=12, num_g=300, num_ids=3, integer=seed > 0)
    assert_same(evaluate_rank(d, qp, gp, qc, gc), reference(d, qp, gp, qc, gc))


@pytest.mark.parametrize("method", ["count", "sort", "auto"])
def test_match_ranks_counts_entries_before_each_match(method):
    rng = np.random.default_rng(7)
    for _ in range(20):
        row = rng.integers(0, 5, 40).astype(np.float32)
        row[rng.random(40) < 0.2] = np.nan  # excluded entries
        valid = np.flatnonzero(~np.isnan(row))
        matches = np.sort(rng.choice(valid, size=rng.integers(1, 12), replace=False))
        order = sorted(valid, key=lambda j: (row[j], j))
        want = sorted(order.index(j) for j in matches)
        np.testing.assert_array_equal(match_ranks(row, matches, method), want)


def test_gallery_smaller_than_max_rank_caps_cmc():
    d, qp, gp, qc, gc = random_problem(1, num_q=10, num_g=12, num_ids=3, integer=True)
    result = evaluate_rank(d, qp, gp, qc, gc, max_rank=50)
    assert result.cmc.shape == (12,)
    assert result.cmc[-1] == 1.0
    assert_same(result, reference(d, qp, gp, qc, gc, 50))


@pytest.mark.parametrize("per_query", [False, True])
def test_junk_mask_matches_reference(per_query):
    d, qp, gp, qc, gc = random_problem(3, integer=True)
    rng = np.random.default_rng(5)
    mask2d = rng.random(d.shape) < 0.2
    if not per_query:
        mask2d = np.broadcast_to(mask2d[0], d.shape)
    mask = mask2d if per_query else mask2d[0]
    assert_same(evaluate_rank(d, qp, gp, qc, gc, junk_mask=mask), reference(d, qp, gp, qc, gc, junk=mask2d))


@pytest.mark.parametrize("seed", range(3))
def test_single_gallery_shot_matches_reference(seed):
    d, qp, gp, qc, gc = random_problem(seed, num_q=15, num_g=60, integer=seed == 2)
    result = evaluate_rank(d, qp, gp, qc, gc, max_rank=10, single_gallery_shot=True, num_repeats=4, seed=seed)
    assert_same(result, reference(d, qp, gp, qc, gc, 10, sgs=True, num_repeats=4, seed=seed))


def test_single_gallery_shot_equals_standard_with_one_image_per_identity():
    rng = np.random.default_rng(0)
    g_pids = np.arange(1, 21)
    q_pids = rng.integers(1, 21, 40)
    d = rng.random((40, 20)).astype(np.float32)
    args = (d, q_pids, g_pids, np.zeros(40, int), np.ones(20, int))
    std, sgs = evaluate_rank(*args), evaluate_rank(*args, single_gallery_shot=True)
    np.testing.assert_allclose(sgs.cmc, std.cmc)
    assert sgs.mAP == std.mAP


def test_hand_worked_example():
    # query pid 1 cam 0. Gallery: same id other cam (0.3), other id (0.1), same id same cam (0.05, removed),
    # distractor pid 0 (0.2), same id cam 2 (0.5), junk pid -1 (0.0, removed).
    g_pids, g_cams = [1, 2, 1, 0, 1, -1], [1, 1, 0, 1, 2, 1]
    d = np.array([[0.3, 0.1, 0.05, 0.2, 0.5, 0.0], [0.3, 0.01, 0.05, 0.2, 0.5, 0.0]])
    # second query pid 2 cam 0: its only match (0.01) is at rank 1 once the junk (0.0) is removed
    result = evaluate_rank(d, [1, 2], g_pids, [0, 0], g_cams, max_rank=5)
    # valid ranked list for query 0: pid2, pid0, pid1, pid1 -> hits at ranks 3 and 4
    assert result.ap[0] == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert result.inp[0] == pytest.approx(2 / 4)
    assert result.ap[1] == 1.0
    np.testing.assert_allclose(result.cmc, [0.5, 0.5, 1, 1, 1])
    trap = evaluate_rank(d, [1, 2], g_pids, [0, 0], g_cams, ap_mode="trapezoid")
    # MATLAB compute_AP: 0.5 * (0 + 1/3) / 2 + 0.5 * (1/3 + 1/2) / 2 = 7/24; a hit at rank 1 gives (1 + 1) / 2
    assert trap.ap[0] == pytest.approx(7 / 24)
    assert trap.ap[1] == 1.0


def test_ties_keep_gallery_order():
    # all distances equal: the ranked list is the gallery order
    d = np.zeros((1, 4), np.float32)
    result = evaluate_rank(d, [1], [2, 1, 3, 1], [0], [1, 1, 1, 1])
    assert result.ap[0] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert result.cmc[0] == 0 and result.cmc[1] == 1


def test_as_dict_keys_and_values():
    d, qp, gp, qc, gc = random_problem(0)
    out = evaluate_rank(d, qp, gp, qc, gc).as_dict()
    assert list(out) == ["rank1", "rank5", "rank10", "mAP", "mINP", "num_valid", "num_skipped"]
    assert 0 <= out["rank1"] <= out["rank5"] <= out["rank10"] <= 1


def test_result_does_not_depend_on_chunk_size_or_modify_input():
    d, qp, gp, qc, gc = random_problem(4, integer=True)
    before = d.copy()
    a = evaluate_rank(d, qp, gp, qc, gc, chunk_size=1)
    b = evaluate_rank(d, qp, gp, qc, gc)
    np.testing.assert_array_equal(d, before)
    np.testing.assert_array_equal(a.cmc, b.cmc)
    np.testing.assert_array_equal(a.ap, b.ap)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_evaluate_features_equals_evaluate_rank_on_full_matrix(metric):
    rng = np.random.default_rng(0)
    qf = rng.integers(-2, 3, (25, 6)).astype(np.float64)  # small integers: exact distances, many ties
    gf = rng.integers(-2, 3, (70, 6)).astype(np.float64)
    _, qp, gp, qc, gc = random_problem(2, num_q=25, num_g=70)
    full = pairwise_distances(qf, gf, metric)
    if metric == "euclidean":
        np.testing.assert_allclose(full, ((qf[:, None] - gf[None]) ** 2).sum(-1), atol=1e-9)
    else:
        cos = (qf @ gf.T) / np.outer(np.linalg.norm(qf, axis=1), np.linalg.norm(gf, axis=1))
        np.testing.assert_allclose(full, 1 - cos, atol=1e-12)
    for chunk in (None, 4):
        got = evaluate_features(qf, gf, qp, gp, qc, gc, metric=metric, chunk_size=chunk)
        want = evaluate_rank(full, qp, gp, qc, gc)
        np.testing.assert_array_equal(got.cmc, want.cmc)
        assert got.mAP == want.mAP and got.mINP == want.mINP


def test_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    d, qp, gp, qc, gc = random_problem(0)
    want = evaluate_rank(d, qp, gp, qc, gc)
    got = evaluate_rank(*(torch.as_tensor(a) for a in (d, qp, gp, qc, gc)))
    assert got.mAP == want.mAP


def test_errors():
    d, qp, gp, qc, gc = random_problem(0)
    with pytest.raises(ValueError, match="q_pids has 3 entries"):
        evaluate_rank(d, qp[:3], gp, qc, gc)
    with pytest.raises(ValueError, match="ap_mode"):
        evaluate_rank(d, qp, gp, qc, gc, ap_mode="voc")
    with pytest.raises(ValueError, match="junk_mask"):
        evaluate_rank(d, qp, gp, qc, gc, junk_mask=np.zeros(3, bool))
    bad = d.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_rank(bad, qp, gp, qc, gc)
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate_rank(d, np.full(len(qp), 99), gp, qc, gc)
    with pytest.raises(ValueError, match="metric"):
        evaluate_features(np.ones((2, 3)), np.ones((4, 3)), [1, 2], [1, 1, 2, 2], [0, 0], [1, 1, 1, 1], metric="l1")
