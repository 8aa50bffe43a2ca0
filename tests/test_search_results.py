"""reid.search.results: the `reid search` result file holds the neighbours, their labels and the queries'."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

pytest.importorskip("faiss")

from reid.io.features import FeatureSet  # noqa: E402
from reid.search import GalleryIndex  # noqa: E402
from reid.search.results import write_search_results  # noqa: E402


def test_result_file_labels_every_neighbour_and_marks_missing_ones(tmp_path):
    rng = np.random.default_rng(0)
    g = rng.standard_normal((6, 8)).astype(np.float32)
    gallery = GalleryIndex.build(g, "flat", pids=[10, 11, 12, 13, 14, 15], camids=[0, 1, 0, 1, 0, 1])
    queries = FeatureSet(g[[4, 1]] * 2.0, np.array([14, -1]), np.array([1, 0]), ["q0.jpg", "q1.jpg"])
    dist, idx = gallery.search(queries.features, 3)
    assert idx[:, 0].tolist() == [4, 1]  # each query finds its own row (scaled copy) first
    idx[1, 2], dist[1, 2] = -1, np.inf  # an approximate index that found fewer than k
    out = write_search_results(tmp_path / "r.h5", gallery, queries, dist, idx, "g.faiss", "q.h5")
    with h5py.File(out) as h5:
        assert h5["indices"][:].tolist() == idx.tolist()
        assert h5["pids"][:].tolist() == [[10 + j for j in idx[0]], [10 + idx[1, 0], 10 + idx[1, 1], -1]]
        assert h5["camids"][1, 2] == -1 and h5["camids"][0, 0] == 0
        assert h5["query_pids"][:].tolist() == [14, -1] and h5["query_paths"].asstr()[:].tolist() == [
            "q0.jpg",
            "q1.jpg",
        ]
        assert dict(h5.attrs) == {
            "index": "g.faiss",
            "query": "q.h5",
            "kind": "flat",
            "k": 3,
            "distance": "squared euclidean of L2-normalised features",
        }
    assert [p.name for p in tmp_path.iterdir()] == ["r.h5"]  # no temp file left
