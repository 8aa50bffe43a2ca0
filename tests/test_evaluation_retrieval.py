"""Recall@K, MAP@R and NMI against hand-worked examples and a plain loop."""

import math

import numpy as np
import pytest

from reid.evaluation.protocol import check_rerank_size, protocol_for, retrieval_metrics
from reid.evaluation.retrieval import (
    evaluate_query_gallery,
    evaluate_retrieval,
    kmeans_nmi,
    normalized_mutual_info,
    sampled_kmeans_nmi,
)


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


def loop_query_gallery(q, ql, g, gl, ks):
    """Each query ranks the whole gallery (squared Euclidean, ties by index); R = its gallery matches."""
    firsts, aps = [], []
    for i in range(len(q)):
        d = [float(np.sum((q[i] - g[j]) ** 2)) for j in range(len(g))]
        order = sorted(range(len(g)), key=lambda j: (d[j], j))
        rel = [gl[j] == ql[i] for j in order]
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
    return {k: np.mean([f < k for f in firsts]) for k in ks}, np.mean(aps), len(q) - len(firsts)


@pytest.mark.parametrize("seed", range(3))
def test_query_gallery_matches_loop(seed):
    rng = np.random.default_rng(seed)
    q, g = rng.integers(0, 3, (25, 3)).astype(np.float64), rng.integers(0, 3, (40, 3)).astype(np.float64)
    ql, gl = rng.integers(0, 10, 25), rng.integers(0, 8, 40)  # classes 8, 9: queries without a match
    ks = (1, 10, 20)
    res = evaluate_query_gallery(q, ql, g, gl, ks=ks, metric="euclidean", chunk_size=6, with_nmi=False)
    recall, m_ap, skipped = loop_query_gallery(q, ql, g, gl, ks)
    assert res.recall == pytest.approx(recall, abs=1e-12)
    assert res.map_at_r == pytest.approx(m_ap, abs=1e-12)
    assert res.num_skipped == skipped


def test_given_distances_rank_like_the_features():
    rng = np.random.default_rng(5)
    feats, labels = rng.standard_normal((50, 6)), rng.integers(0, 7, 50)
    dense = ((feats[:, None] - feats[None]) ** 2).sum(-1)
    dense[np.diag_indices(50)] = -1.0  # the diagonal is ignored
    a = evaluate_retrieval(feats, labels, metric="euclidean", with_nmi=False)
    b = evaluate_retrieval(feats, labels, distances=dense, chunk_size=9, with_nmi=False)
    assert a.recall == b.recall and a.map_at_r == pytest.approx(b.map_at_r)
    # a distance matrix that reverses the order changes the result
    c = evaluate_retrieval(feats, labels, distances=-dense, with_nmi=False)
    assert c.recall[1] < a.recall[1] or c.map_at_r < a.map_at_r
    with pytest.raises(ValueError, match="50 x 50"):
        evaluate_retrieval(feats, labels, distances=dense[:10])


def test_nmi_sampled_by_whole_classes_and_skipped():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(40), 5)
    feats = np.eye(40)[labels] * 10 + 0.01 * rng.standard_normal((200, 40))
    value, notes = sampled_kmeans_nmi(feats, labels, max_images=50, seed=1)
    assert value == pytest.approx(1.0, abs=0.05)
    assert notes and "NMI on 50 of 200 images (10 of 40 classes" in notes[0]
    assert sampled_kmeans_nmi(feats, labels, max_images=500) == (kmeans_nmi(feats, labels), [])
    skipped, notes = sampled_kmeans_nmi(feats, labels, max_images=0)
    assert skipped is None and "skipped" in notes[0]


def test_protocol_choice_and_metrics():
    assert protocol_for("market1501").name == "reid" and not protocol_for("custom").retrieval
    assert protocol_for("cub200").ks == (1, 2, 4, 8) and protocol_for("cars196").name == "all-vs-all"
    assert protocol_for("sop").ks == (1, 10, 100, 1000) and protocol_for("sop").nmi_max_images
    inshop = protocol_for("inshop")
    assert inshop.name == "query-gallery" and inshop.ks == (1, 10, 20, 30, 40, 50)
    assert (inshop.k1, inshop.k2, inshop.lambda_value, inshop.select_key) == (50, 20, 0.94, "recall@1")
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(5), 4)
    feats = np.eye(5)[labels] + 0.05 * rng.standard_normal((20, 5))
    res = retrieval_metrics(protocol_for("cub200"), feats, labels)
    assert set(res.recall) == {1, 2, 4, 8} and res.recall[1] == 1.0 and res.nmi == pytest.approx(1.0)
    mixed = np.tile(np.arange(5), 4)
    feats = np.eye(5)[mixed] + 0.05 * rng.standard_normal((20, 5))
    qg = retrieval_metrics(inshop, feats[:8], mixed[:8], feats[8:], mixed[8:], with_nmi=False)
    assert set(qg.recall) == {1, 10, 20, 30, 40, 50} and qg.recall[1] == 1.0 and qg.num_valid == 8
    with pytest.raises(ValueError, match="gallery features"):
        retrieval_metrics(inshop, feats, labels)
    with pytest.raises(ValueError, match="not a retrieval protocol"):
        retrieval_metrics(protocol_for("market1501"), feats, labels)


def test_rerank_size_limit_names_the_matrix():
    check_rerank_size(8131, 8131)
    with pytest.raises(ValueError, match=r"60,502 x 60,502 would build a dense 13.6 GiB"):
        check_rerank_size(60502, 60502)
