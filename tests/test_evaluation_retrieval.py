"""Recall@K, MAP@R and NMI against hand-worked examples and a plain loop."""

import math

import numpy as np
import pytest

from reid.evaluation.retrieval import evaluate_retrieval, kmeans_nmi, normalized_mutual_info


def loop_reference(feats, labels, ks):
    """Every image queries the others; squared Euclidean; ties by index; Python sorting."""
    n = len(labels)
    firsts, aps = [], []
    for i in range(n):
        d = {j: float(np.sum((feats[i] - feats[j]) ** 2)) for j in range(n) if j != i}
        order = sorted(d, key=lambda j: (d[j], j))
        rel = [labels[j] == labels[i] for j in order]
        r = sum(rel)
        if r == 0:
            continue
        firsts.append(rel.index(True))
        hits, ap = 0, 0.0
        for pos in range(r):
            if rel[pos]:
                hits += 1
                ap += hits / (pos + 1)
        aps.append(ap / r)
    return {k: np.mean([f < k for f in firsts]) for k in ks}, np.mean(aps), n - len(firsts)


def test_hand_worked_recall_and_map_at_r():
    # 1-D points; class A at 0, 1, 5; class B at 2, 3; class C at 10 (no other C: skipped)
    x = np.array([[0.0], [1.0], [5.0], [2.0], [3.0], [10.0]])
    y = np.array(["A", "A", "A", "B", "B", "C"])
    res = evaluate_retrieval(x, y, ks=(1, 2), metric="euclidean", with_nmi=False)
    # ranked lists (squared distances): 0 -> 1(A) hit ; 1 -> 0(A) and 3(B) tie at 1, index 0 first: hit
    # 2 -> 4(B), 3(B), 1(A): first hit at rank 3 ; 3 -> 1(A) and 4(B) tie at 1, index 1 first: hit at rank 2
    # 4 -> 3(B) hit
    assert res.recall == {1: pytest.approx(3 / 5), 2: pytest.approx(4 / 5)}
    assert (res.num_valid, res.num_skipped) == (5, 1)
    # MAP@R, R = 2 for A images, 1 for B images:
    # 0: order 1(A),3(B) -> (1/1)/2 = .5 ; 1: 0(A),3(B) -> .5 ; 2: 4(B),3(B) -> 0
    # 3: 1(A) -> 0 ; 4: 3(B) -> 1
    np.testing.assert_allclose(res.ap_at_r[:5], [0.5, 0.5, 0.0, 0.0, 1.0])
    assert res.map_at_r == pytest.approx(2 / 5)


def test_map_at_r_musgrave_example():
    # R = 3, ranked relevance 1, 0, 1 within the top 3: (1/3) * (1 + 2/3)
    x = np.array([[0.0], [1.0], [2.0], [3.0], [2.5]])
    y = np.array([0, 0, 1, 0, 0])  # query 0: others at 1(same), 2(diff), 2.5(same), 3(same)
    res = evaluate_retrieval(x, y, ks=(1,), metric="euclidean", with_nmi=False)
    assert res.ap_at_r[0] == pytest.approx((1 + 2 / 3) / 3)


@pytest.mark.parametrize("seed", range(4))
def test_recall_and_map_at_r_match_loop(seed):
    rng = np.random.default_rng(seed)
    feats = rng.integers(0, 3, (60, 3)).astype(np.float64)  # many exact ties
    labels = rng.integers(0, 12, 60)
    ks = (1, 2, 4, 8)
    res = evaluate_retrieval(feats, labels, ks=ks, metric="euclidean", chunk_size=7, with_nmi=False)
    recall, m_ap, skipped = loop_reference(feats, labels, ks)
    assert res.recall == pytest.approx(recall, abs=1e-12)
    assert res.map_at_r == pytest.approx(m_ap, abs=1e-12)
    assert res.num_skipped == skipped


def test_nmi_hand_worked():
    # classes {0,0,0,1,1,1}, clusters {0,0,1,1,2,2}: MI = 2/3 ln 2, H = ln 2 and ln 3
    value = normalized_mutual_info([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2])
    assert value == pytest.approx((2 / 3 * math.log(2)) / ((math.log(2) + math.log(3)) / 2))
    assert normalized_mutual_info([0, 0, 1, 1], [5, 5, 7, 7]) == pytest.approx(1.0)
    assert normalized_mutual_info([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0)
    assert normalized_mutual_info([3, 3, 3], [1, 1, 1]) == 1.0
    assert normalized_mutual_info([0, 1, 2, 3], [0, 0, 0, 0]) == 0.0


def test_nmi_is_symmetric_and_label_permutation_invariant():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 100), rng.integers(0, 7, 100)
    v = normalized_mutual_info(a, b)
    assert normalized_mutual_info(b, a) == pytest.approx(v)
    assert normalized_mutual_info((a + 3) % 5, 10 * b) == pytest.approx(v)
    assert 0 < v < 1


def test_kmeans_nmi_finds_separated_clusters_and_is_seeded():
    rng = np.random.default_rng(0)
    centres = 10 * np.eye(8)[:5]
    labels = np.repeat(np.arange(5), 20)
    feats = centres[labels] + 0.1 * rng.standard_normal((100, 8))
    assert kmeans_nmi(feats, labels, normalize=False) == pytest.approx(1.0)
    noisy = rng.standard_normal((100, 8))
    assert kmeans_nmi(noisy, labels, seed=3) == kmeans_nmi(noisy, labels, seed=3)


def test_evaluate_retrieval_reports_nmi_and_errors():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 10)
    feats = np.eye(4)[labels] + 0.05 * rng.standard_normal((40, 4))
    res = evaluate_retrieval(feats, labels, ks=(1, 2))
    assert res.recall[1] == 1.0 and res.map_at_r == pytest.approx(1.0)
    assert res.nmi == pytest.approx(1.0)
    assert set(res.as_dict()) == {"recall@1", "recall@2", "map@r", "nmi", "num_valid", "num_skipped"}
    with pytest.raises(ValueError, match="labels"):
        evaluate_retrieval(feats, labels[:5])
    with pytest.raises(ValueError, match="ks"):
        evaluate_retrieval(feats, labels, ks=(0,))
