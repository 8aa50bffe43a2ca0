"""Re-ranking from k-nearest-neighbour lists equals the dense re-ranking on its candidates."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("faiss")

from click.testing import CliRunner  # noqa: E402

from reid.cli import cli  # noqa: E402
from reid.errors import DataError  # noqa: E402
from reid.inference import k_reciprocal  # noqa: E402
from reid.io.features import PartialFeatureWriter  # noqa: E402
from reid.search.rerank_knn import KnnLists, k_reciprocal_from_lists, knn_lists, rerank_knn  # noqa: E402


def clustered(n: int, dim: int = 32, ids: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, ids, n)
    x = rng.standard_normal((ids, dim))[labels] + 0.5 * rng.standard_normal((n, dim))
    return x.astype(np.float32), labels


def test_full_lists_give_the_dense_reranking() -> None:
    x, _ = clustered(400)
    q, g = x[:80], x[80:]
    dense = k_reciprocal(q, g, 20, 6, 0.3, device="cpu")
    idx, dist = rerank_knn(q, g, k=400)
    assert idx.shape == (80, 320) and (idx >= 0).all()
    np.testing.assert_allclose(dist, np.take_along_axis(dense, idx, 1), atol=1e-5)
    np.testing.assert_allclose(dist, np.sort(dense, 1), atol=1e-5)  # the same ranking, every gallery image
    assert (np.diff(dist, axis=1) >= 0).all()


def test_short_lists_score_their_candidates_exactly() -> None:
    x, _ = clustered(300, seed=1)
    q, g = x[:50], x[50:]
    dense = k_reciprocal(q, g, 10, 3, 0.4, device="cpu")
    idx, dist = rerank_knn(q, g, k=40, k1=10, k2=3, lambda_value=0.4)
    ok = idx >= 0
    assert ok.sum(1).min() > 10  # most of a query's 40 nearest are gallery images
    np.testing.assert_allclose(dist[ok], np.take_along_axis(dense, np.where(ok, idx, 0), 1)[ok], atol=1e-5)
    assert np.isinf(dist[~ok]).all()


def test_lists_must_be_long_enough_and_complete() -> None:
    x, _ = clustered(60, seed=2)
    with pytest.raises(DataError, match="k1 \\+ 1"):
        rerank_knn(x[:10], x[10:], k=15, k1=20)
    lists = knn_lists(x, 10, 25)
    with pytest.raises(DataError, match="too short"):
        k_reciprocal_from_lists(lists, x, k1=30)
    idx = lists.idx.copy()
    idx[3, 5] = -1
    with pytest.raises(DataError, match="missing"):
        KnnLists(lists.dist, idx, lists.rowmax, 10)


def test_row_maxima_come_from_the_negated_search() -> None:
    x, _ = clustered(200, seed=3)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    d = ((xn[:, None] - xn[None]) ** 2).sum(-1)
    lists = knn_lists(x, 20, 25)
    np.testing.assert_allclose(lists.rowmax, d.max(1), atol=1e-5)
    assert (lists.idx[:, 0] == np.arange(200)).all()
    ivf = knn_lists(x, 20, 25, "ivf", nprobe=10_000)  # every cell searched: the faiss path is exact too
    np.testing.assert_allclose(ivf.rowmax, d.max(1), atol=1e-5)
    np.testing.assert_allclose(ivf.dist, lists.dist, atol=1e-5)
    assert (ivf.idx[:, 0] == np.arange(200)).all()
    cells = knn_lists(x, 20, 25, "cells", nprobe=10_000)  # every cell probed, the sample is every point: exact
    np.testing.assert_allclose(cells.rowmax, d.max(1), atol=1e-5)
    np.testing.assert_allclose(cells.dist, lists.dist, atol=1e-5)
    few = knn_lists(x, 20, 25, "cells", nprobe=4, nlist=8)  # approximate: most of the nearest (0.975 seed 3)
    recall = np.mean([len(np.intersect1d(a[:8], b[:8])) / 8 for a, b in zip(few.idx, lists.idx)])
    assert recall > 0.9 and (few.idx[:, 0] == np.arange(200)).all()


def _features(path, x, pids, cams) -> None:
    n = len(x)
    paths = [f"{path.stem}{i}.jpg" for i in range(n)]
    attrs = {"weights": "w", "preprocess": {"size": [256, 128]}, "test_time_options": {}}
    with PartialFeatureWriter(path, pids, cams, paths, x.shape[1], attrs, "fp") as writer:
        writer.write(x / np.linalg.norm(x, axis=1, keepdims=True))
        writer.finish()


def test_rerank_command_with_knn_lists(tmp_path) -> None:
    x, labels = clustered(260, seed=4)
    cams = np.arange(260) % 3
    _features(tmp_path / "q.h5", x[:40], labels[:40], cams[:40])
    _features(tmp_path / "g.h5", x[40:], labels[40:], cams[40:] + 1)
    base = ["rerank", "--query", str(tmp_path / "q.h5"), "--gallery", str(tmp_path / "g.h5")]
    done = CliRunner().invoke(cli, [*base, "--knn", "260", "--out", str(tmp_path / "a")])
    assert done.exit_code == 0, done.output
    dense = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "b")])
    assert dense.exit_code == 0, dense.output
    a, b = (json.loads((tmp_path / f / "metrics.json").read_text()) for f in "ab")
    knn_row = next(v for name, v in a.items() if "knn(260,flat)" in name)
    dense_row = next(v for name, v in b.items() if name != "original")
    assert knn_row["mAP"] == pytest.approx(dense_row["mAP"], abs=1e-6)
    short = CliRunner().invoke(cli, [*base, "--knn", "5", "--out", str(tmp_path / "c")])
    assert short.exit_code != 0 and "at least k1 + 1" in short.output
