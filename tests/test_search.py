"""faiss gallery indexes: exact search equals brute force, files round-trip, wrong-model queries fail."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest

pytest.importorskip("faiss")

from reid.errors import DataError  # noqa: E402
from reid.io.features import PartialFeatureWriter, read_features  # noqa: E402
from reid.search import GalleryIndex, build_from_feature_file, model_key  # noqa: E402


def clustered(n: int, dim: int = 32, ids: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ids, dim))
    labels = rng.integers(0, ids, n)
    x = centres[labels] + 0.5 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def brute_force(q: np.ndarray, g: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gn = g / np.linalg.norm(g, axis=1, keepdims=True)
    d = ((qn[:, None, :] - gn[None, :, :]) ** 2).sum(-1)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, 1), idx


def test_flat_search_is_exact_and_approximate_kinds_recall_most() -> None:
    g, _ = clustered(3000, seed=1)
    q, _ = clustered(50, seed=2)
    ref_d, ref_i = brute_force(q.astype(np.float64), g.astype(np.float64), 10)
    d, i = GalleryIndex.build(g, "flat").search(q, 10)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(d, ref_d, atol=1e-5)
    for kind, floor in (("ivf", 0.9), ("hnsw", 0.9), ("ivfpq", 0.3)):
        _, got = GalleryIndex.build(g, kind).search(q, 10, nprobe=32)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, ref_i)])
        assert recall >= floor, (kind, recall)


def test_unnormalised_features_are_normalised_like_the_reranker() -> None:
    g, _ = clustered(200, seed=3)
    q, _ = clustered(5, seed=4)
    scale = np.random.default_rng(0).uniform(0.5, 4.0, (200, 1)).astype(np.float32)
    d, i = GalleryIndex.build(g * scale, "flat").search(q * 3.0, 5)
    ref_d, ref_i = brute_force(q.astype(np.float64), g.astype(np.float64), 5)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(d, ref_d, atol=1e-5)


def feature_file(path, x, labels, weights="w1") -> None:
    n = len(x)
    attrs = {"weights": weights, "preprocess": {"size": [256, 128]}, "test_time_options": {}}
    paths = [f"img{i}.jpg" for i in range(n)]
    with PartialFeatureWriter(path, labels, np.zeros(n, np.int64), paths, x.shape[1], attrs, "fp-1") as writer:
        writer.write(x)
        writer.finish()


def test_index_file_round_trips_with_labels_and_fingerprint(tmp_path) -> None:
    g, labels = clustered(500, seed=5)
    feature_file(tmp_path / "g.h5", g, labels)
    built = build_from_feature_file(tmp_path / "g.h5", "hnsw")
    built.save(tmp_path / "g.faiss")
    loaded = GalleryIndex.load(tmp_path / "g.faiss")
    assert loaded.kind == "hnsw" and len(loaded) == 500 and loaded.dim == 32
    assert loaded.attrs["features_fingerprint"] == "fp-1"
    assert loaded.attrs["model_key"] == model_key(read_features(tmp_path / "g.h5").attrs)
    np.testing.assert_array_equal(loaded.pids, labels)
    assert loaded.paths[7] == "img7.jpg"
    np.testing.assert_array_equal(loaded.search(g[:3], 4)[1], built.search(g[:3], 4)[1])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left behind


def test_queries_from_another_model_or_dimension_are_refused(tmp_path) -> None:
    g, labels = clustered(100, seed=6)
    feature_file(tmp_path / "g.h5", g, labels, weights="w1")
    gallery = build_from_feature_file(tmp_path / "g.h5")
    other = {"weights": "w2", "preprocess": {"size": [256, 128]}, "test_time_options": {}}
    with pytest.raises(DataError, match="another model"):
        gallery.search(g[:2], 3, query_attrs=other)
    with pytest.raises(DataError, match="32-d"):
        gallery.search(np.ones((2, 16), np.float32), 3)
    with pytest.raises(DataError, match="unknown index kind"):
        GalleryIndex.build(g, "lsh")


def cli(*args: str) -> subprocess.CompletedProcess:
    code = "from reid.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # two reid processes end to end: ~17 s
def test_cli_build_and_search_write_top_k_and_reject_another_model(tmp_path) -> None:
    g, labels = clustered(400, seed=7)
    q, q_labels = clustered(20, seed=8)
    feature_file(tmp_path / "g.h5", g, labels)
    feature_file(tmp_path / "q.h5", q, q_labels)
    done = cli("index", "build", "--features", str(tmp_path / "g.h5"), "--out", str(tmp_path / "g.faiss"))
    assert done.returncode == 0, done.stderr
    out = tmp_path / "top.h5"
    done = cli("search", "--index", str(tmp_path / "g.faiss"), "--query", str(tmp_path / "q.h5"), "--k", "7",
               "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    with h5py.File(out, "r") as h5:
        _, ref_i = brute_force(q.astype(np.float64), g.astype(np.float64), 7)
        np.testing.assert_array_equal(h5["indices"][()], ref_i)
        np.testing.assert_array_equal(h5["pids"][()], labels[ref_i])
    feature_file(tmp_path / "q2.h5", q, q_labels, weights="other")
    bad = cli("search", "--index", str(tmp_path / "g.faiss"), "--query", str(tmp_path / "q2.h5"), "--out",
              str(tmp_path / "x.h5"))  # fmt: skip
    assert bad.returncode != 0 and "another model" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    missing = cli("search", "--index", str(tmp_path / "nope.faiss"), "--query", str(tmp_path / "q.h5"), "--out",
                  str(tmp_path / "x.h5"))  # fmt: skip
    assert missing.returncode != 0 and "index file not found" in missing.stderr
