"""k-reciprocal re-ranking fed by k-nearest-neighbour lists, for galleries too large for dense rows.

The exact re-ranking (reid.inference.rerank) needs, for every point of the joint
query + gallery set, only its k1 + 1 nearest, its row maximum and a few distances
of expanded-set members; the Jaccard term needs the sparse V rows. All of these
come from neighbour lists: a faiss search of the joint set against itself with
k >= k1 + 1 (the k2 query-expansion neighbours are a prefix of the same lists),
the row maxima from a 1-nearest search of the negated features (on unit vectors
the farthest point of x is the nearest of -x: |x - y|^2 = 4 - |-x - y|^2), and
the missing expanded-set distances from the features themselves.

What changes is the output: instead of a dense (Q, G) matrix, each query's
gallery entries in its own list are re-scored and re-sorted (the candidates).
Gallery items outside a query's list keep no score; with exact lists and k = N
the result equals the dense re-ranking. Memory is O(N k) for the lists and
O(N k1 k2) for V, so a million images fit in a few GB.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from reid.errors import DataError
from reid.gemm import matmul_nt
from reid.inference.rerank import _check_params, _encode, _local_query_expansion, _on_pass_threads, _Sparse
from reid.inference.rerank_sources import FeatureSource, Source
from reid.test_time import DEFAULTS

__all__ = ["KnnLists", "dense_with_rest", "k_reciprocal_from_lists", "knn_lists", "rerank_knn"]


class KnnLists:
    """Neighbour lists of the joint (queries first, then gallery) set: (N, k) distances and indices, nearest
    first, each point's own index first; (N,) row maxima (the farthest point's distance)."""

    def __init__(self, dist: np.ndarray, idx: np.ndarray, rowmax: np.ndarray, num_query: int) -> None:
        self.dist, self.idx = np.asarray(dist, np.float32), np.asarray(idx, np.int64)
        self.rowmax = np.asarray(rowmax, np.float32)
        self.num_query = int(num_query)
        n = self.idx.shape[0]
        if self.dist.shape != self.idx.shape or self.rowmax.shape != (n,) or not 0 < num_query < n:
            raise DataError(
                f"neighbour lists must be (N, k) distances and indices with (N,) row maxima and 0 < num_query < N, "
                f"got {self.dist.shape}, {self.idx.shape}, {self.rowmax.shape}, num_query={num_query}"
            )
        if (self.idx < 0).any() or (self.idx >= n).any():
            raise DataError("neighbour lists hold missing (-1) or out-of-range entries: search with a larger nprobe")

    @property
    def n(self) -> int:
        return self.idx.shape[0]


def knn_lists(
    features: np.ndarray,
    num_query: int,
    k: int,
    kind: str = "flat",
    *,
    nprobe: int | None = None,
    timings: dict[str, float] | None = None,
    **build: object,
) -> KnnLists:
    """Neighbour lists of the joint set: "flat" exact (the dense re-ranking's symmetric blocked scan, giving
    the lists and the row maxima in one pass); "cells": faiss k-means cells, and every cell's points against
    the points of the nprobe cells nearest its centroid in one matrix product (approximate; row maxima over
    a random sample of points); "ivf" / "hnsw" / "ivfpq" from a faiss index over the set (approximate; the
    row maxima from a 1-nearest search of the negated features). "cells" is the fast one for a million
    points: the products run at BLAS speed, where a faiss search scans each point's cells one query at a time.

    features: (N, D) query features then gallery features (L2-normalised here).
    timings: if given, receives the wall seconds of each step (build, search, farthest or rowmax) and
        their CPU seconds (name + "_cpu").
    """
    from .index import GalleryIndex, _as_float32

    clock = _Clock(timings)
    x = _as_float32(features, True)
    n = x.shape[0]
    k = min(int(k), n)
    if kind == "flat":
        dist, idx, rowmax = _exact_lists(torch.from_numpy(x), num_query, k)
    elif kind == "cells":
        dist, idx = _cell_lists(x, k, nprobe or 16, clock, **build)
        rowmax = np.maximum(_sampled_rowmax(torch.from_numpy(x)), dist.max(1))
        clock("rowmax")
    else:
        gi = GalleryIndex.build(x, kind, normalize=False, **build)
        clock("build")
        dist, idx = gi.search(x, k, nprobe=nprobe)
        clock("search")
        far, _ = gi.search(-x, 1, nprobe=nprobe)
        clock("farthest")
        rowmax = np.maximum(4.0 - far[:, 0], dist.max(1))  # a row's maximum is at least its listed distances
    _self_first(dist, idx)
    return KnnLists(np.maximum(dist, 0), idx, rowmax, num_query)


def _cell_lists(
    x: np.ndarray,
    k: int,
    nprobe: int,
    clock,
    nlist: int | None = None,
    train_size: int | None = None,
    niter: int = 12,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(N, k) distances and indices from k-means cells: each cell's points against its probed cells' points.

    4 sqrt(N) cells (~4,000 at a million, ~250 points each): at 100,000 clustered points the nearest 21
    were found 0.93 of the time with nprobe 16, against 0.73 for sqrt(N) cells with nprobe 8 (twice the
    candidates). k-means trains on 64 points a cell (faiss asks for at least 39) for 12 iterations: at a
    million generated points (~20 per identity) 100,000 training points (25 a cell, 20 iterations) left
    about one identity in seven without a training point, its images scattered over unrelated cells,
    and the lists found 0.456 of the 21 nearest; 64 a cell found 0.669 (build 63 -> 92 s, 2 cores).
    The cell loop runs on `pass_threads()` threads (all by default; two threads on shared,
    loaded cores tripled its CPU time at 30,000 points: REID_RERANK_PASS_THREADS=1 there), its products
    on `reid.gemm.matmul_nt` (2.2x MKL on the Zen 5 machine).
    """
    from .index import TRAIN_POINTS_PER_CELL, _faiss

    faiss = _faiss()
    n, dim = x.shape
    cells = int(nlist or max(1, min(4 * np.sqrt(n), n // 39)))
    train_size = int(train_size or TRAIN_POINTS_PER_CELL * cells)
    rng = np.random.default_rng(seed)
    sample = x[np.sort(rng.choice(n, train_size, replace=False))] if n > train_size else x
    km = faiss.Kmeans(dim, cells, niter=niter, seed=seed)
    km.train(sample)
    _, assign = km.index.search(x, 1)
    clock("build")
    order = np.argsort(assign[:, 0], kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(assign[:, 0], minlength=cells))])
    _, probes = km.index.search(km.centroids, cells)  # every cell's cells by centroid distance, itself first
    # A cell-sorted copy: a cell's points and its probed cells' points are contiguous slices, not gathers
    # of scattered rows (memory-bound, and several times slower when other jobs share the memory bus).
    xs = torch.from_numpy(x[order])
    order_t = torch.from_numpy(order)
    dist_s, idx_s = torch.empty((n, k)), torch.empty((n, k), dtype=torch.int64)
    with _on_pass_threads(torch.device("cpu")):
        for c in range(cells):
            lo, hi = int(bounds[c]), int(bounds[c + 1])
            if lo == hi:
                continue
            spans, size = [], 0
            for p in probes[c]:  # at least nprobe cells and at least k points
                if len(spans) >= nprobe and size >= k:
                    break
                spans.append((int(bounds[p]), int(bounds[p + 1])))
                size += spans[-1][1] - spans[-1][0]
            cand = torch.cat([order_t[a:b] for a, b in spans])
            dot = matmul_nt(xs[lo:hi], torch.cat([xs[a:b] for a, b in spans]))
            top = dot.topk(k, dim=1, largest=True, sorted=True)  # on unit rows the nearest have the largest a.c
            dist_s[lo:hi], idx_s[lo:hi] = 2.0 - 2.0 * top.values, cand[top.indices]  # 2 - 2 a.c, as addmm rounds
    del xs
    dist, idx = np.empty((n, k), np.float32), np.empty((n, k), np.int64)
    dist[order], idx[order] = dist_s.numpy(), idx_s.numpy()
    clock("search")
    return dist, idx


def _sampled_rowmax(x: torch.Tensor, size: int = 4096, seed: int = 0) -> np.ndarray:
    """Every point's largest distance to a random sample of points (all of them when N <= size)."""
    n = x.shape[0]
    pick = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(n, min(size, n), replace=False)))
    sample = x[pick]
    out = np.empty(n, np.float32)
    step = max(1, (1 << 24) // sample.shape[0])
    for a in range(0, n, step):
        out[a : a + step] = (2.0 - 2.0 * matmul_nt(x[a : a + step], sample).amin(1)).numpy()
    return out


class _Clock:
    """Records the wall seconds since the previous call under a name, and the process CPU seconds under
    name + "_cpu" (the development machine is shared: CPU time is what a stage costs), when a dict is given."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings, self.last, self.cpu = timings, time.perf_counter(), time.process_time()

    def __call__(self, name: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        if self.timings is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
            self.timings[name + "_cpu"] = self.timings.get(name + "_cpu", 0.0) + cpu - self.cpu
        self.last, self.cpu = now, cpu


def _exact_lists(x: torch.Tensor, num_query: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, k) distances and indices of the k nearest and (N,) row maxima of unit rows x.

    The dense re-ranking's scan (reid.inference.rerank_sources.FeatureSource) without its query x gallery
    block: half the products of a plain blocked search (each block of the upper triangle serves its rows
    and its columns) and a threshold filter instead of a top-k of every block; the same rounding as the
    dense path's scan.
    """
    src = FeatureSource(x.contiguous(), num_query, 2048, False)  # works in x itself: no (N, D) copy
    dist, idx, rowmax = src.nearest(k)
    return dist.numpy(), idx.numpy(), rowmax.numpy()


def _self_first(dist: np.ndarray, idx: np.ndarray) -> None:
    """Put each point first in its own list (distance 0), as the exact ranking does (in place)."""
    own = np.arange(idx.shape[0])
    at = idx == own[:, None]
    ok = at[:, 0]
    for i in np.flatnonzero(~ok):  # rare: a duplicate came first, or an approximate index missed the point
        j = int(np.argmax(at[i])) if at[i].any() else idx.shape[1] - 1
        idx[i, 1 : j + 1], dist[i, 1 : j + 1] = idx[i, :j].copy(), dist[i, :j].copy()
        idx[i, 0], dist[i, 0] = i, 0.0


class _FeaturePairs(Source):
    """Distances of arbitrary pairs from unit features: what the expanded sets need beyond the lists."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x, self.n = x, x.shape[0]

    def pairs(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        out = torch.empty(rows.shape)
        step = max(1, (1 << 20) // self.x.shape[1])
        for s in range(0, rows.shape[0], step):
            r, c = rows[s : s + step], cols[s : s + step]
            out[s : s + step] = (2.0 - 2.0 * (self.x[r] * self.x[c]).sum(1)).clamp_(min=0)
        return out


def k_reciprocal_from_lists(
    lists: KnnLists,
    features: np.ndarray,
    k1: int = DEFAULTS.k1,
    k2: int = DEFAULTS.k2,
    lambda_value: float = DEFAULTS.lambda_value,
    *,
    timings: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-ranked candidates of every query: ((Q, c) gallery indices, (Q, c) distances), best first.

    The candidates of a query are the gallery entries of its list (padded with -1 / inf where a query
    has fewer than c). features: the (N, D) joint features the lists were made from (for the
    expanded-set distances the lists lack). Exact when the lists are exact (k = N: the dense result).
    timings: if given, receives the wall and CPU ("_cpu") seconds of each stage (encode, lqe, jaccard).
    """
    clock = _Clock(timings)
    _check_params(k1, k2, lambda_value, 1)
    n, k = lists.idx.shape
    if k < min(k1 + 1, n) or k < min(k2, n):
        raise DataError(f"neighbour lists of {k} entries are too short for k1={k1}, k2={k2}: need k >= {k1 + 1}")
    x = torch.nn.functional.normalize(torch.as_tensor(np.asarray(features, np.float32)), dim=1)
    if x.shape[0] != n:
        raise DataError(f"{x.shape[0]} features for neighbour lists of {n} points")
    near = torch.as_tensor(lists.idx)
    near_d = torch.as_tensor(lists.dist)
    rowmax = torch.as_tensor(lists.rowmax)
    if not bool((rowmax > 0).all()):
        raise DataError("a point has distance 0 to every point; re-ranking is undefined")
    k_full, k_half = min(k1 + 1, n), min(int(np.around(k1 / 2.0)) + 1, n)
    with _on_pass_threads(torch.device("cpu")):
        v = _encode(_FeaturePairs(x), near_d[:, :k_full], near[:, :k_full], near[:, :k_half], rowmax)
        del x, near_d  # the features' copy is not needed past the expanded sets (2 GB at 1M x 512)
        clock("encode")
        if k2 != 1:
            v = _local_query_expansion(v, near[:, : min(k2, n)])
        clock("lqe")
        out = _score_candidates(v, lists, lambda_value)
        clock("jaccard")
        return out


def _score_candidates(v: _Sparse, lists: KnnLists, lambda_value: float) -> tuple[np.ndarray, np.ndarray]:
    """(1 - lambda) * jaccard + lambda * d / rowmax for each query's gallery candidates, sorted."""
    nq, n = lists.num_query, lists.n
    ng = n - nq
    cand = torch.as_tensor(lists.idx[:nq])
    is_g = cand >= nq
    width = max(1, int(is_g.sum(1).max()))
    # gallery candidates first, in list order (a stable sort of "not gallery")
    order = torch.argsort((~is_g).to(torch.int8), dim=1, stable=True)[:, :width]
    g_idx = torch.where(is_g.gather(1, order), cand.gather(1, order) - nq, -1)
    g_d = torch.as_tensor(lists.dist[:nq]).gather(1, order)

    g_first = int(v.start[nq])
    g_col = v.cols[g_first:]
    col_order = torch.argsort(g_col, stable=True)
    g_row, g_val = v.rows[g_first:][col_order] - nq, v.vals[g_first:][col_order]
    col_count = torch.bincount(g_col, minlength=n)
    col_start = torch.cumsum(col_count, 0) - col_count
    del g_col, col_order

    step = max(1, (1 << 24) // max(1, ng))
    scratch = torch.zeros(step * ng)
    shared = torch.zeros(g_idx.shape)
    for a in range(0, nq, step):
        b = min(a + step, nq)
        lo, hi = int(v.start[a]), int(v.start[b - 1] + v.count[b - 1])
        kk, val = v.cols[lo:hi], v.vals[lo:hi]
        entries = v.rows[lo:hi] - a
        touched = []
        for s in range(0, kk.numel(), 1 << 16):  # bounded joins: a query's columns x the gallery rows holding them
            ks, vs, es = kk[s : s + (1 << 16)], val[s : s + (1 << 16)], entries[s : s + (1 << 16)]
            pos, entry = _expand(col_start[ks], col_count[ks])
            flat = es[entry] * ng + g_row[pos]
            scratch.index_add_(0, flat, torch.minimum(vs[entry], g_val[pos]))
            touched.append(flat)
        gi = g_idx[a:b]
        at = (torch.arange(b - a)[:, None] * ng + gi.clamp(min=0)).flatten()
        shared[a:b] = torch.where(gi >= 0, scratch[at].view(b - a, -1), 0.0)
        for flat in touched:  # zero only what the joins wrote
            scratch[flat] = 0.0
    jaccard = 1.0 - shared / (2.0 - shared)
    final = (1.0 - lambda_value) * jaccard + lambda_value * g_d / torch.as_tensor(lists.rowmax[:nq])[:, None]
    final = torch.where(g_idx >= 0, final, float("inf"))
    # ties by gallery index, as the dense result sorted stably
    key = torch.argsort(torch.where(g_idx >= 0, g_idx, ng), dim=1, stable=True)
    final, g_idx = final.gather(1, key), g_idx.gather(1, key)
    best = torch.argsort(final, dim=1, stable=True)
    return g_idx.gather(1, best).numpy(), final.gather(1, best).numpy()


def _expand(start: torch.Tensor, count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    owner = torch.repeat_interleave(torch.arange(count.numel()), count)
    first = torch.cumsum(count, 0) - count
    return torch.arange(owner.numel()) - (first - start)[owner], owner


def rerank_knn(
    q_feats: np.ndarray,
    g_feats: np.ndarray,
    k: int = 100,
    k1: int = DEFAULTS.k1,
    k2: int = DEFAULTS.k2,
    lambda_value: float = DEFAULTS.lambda_value,
    *,
    kind: str = "flat",
    nprobe: int | None = None,
    **build: object,
) -> tuple[np.ndarray, np.ndarray]:
    """k-reciprocal re-ranking of each query's k nearest (joint-set lists from a faiss index of `kind`).

    Returns ((Q, c) gallery indices, (Q, c) re-ranked distances), best first, c <= k.
    """
    q, g = np.asarray(q_feats, np.float32), np.asarray(g_feats, np.float32)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1] or not len(q) or not len(g):
        raise DataError(f"query features {q.shape} and gallery features {g.shape} must be (n, D) with the same D")
    x = np.concatenate([q, g])
    if k < k1 + 1:
        raise DataError(f"k={k} must be at least k1 + 1 = {k1 + 1}")
    lists = knn_lists(x, len(q), k, kind, nprobe=nprobe, **build)
    return k_reciprocal_from_lists(lists, x, k1, k2, lambda_value)


def dense_with_rest(idx: np.ndarray, dist: np.ndarray, original: np.ndarray) -> np.ndarray:
    """(Q, G) for scoring: the candidates' re-ranked distances (all <= 1), then every other gallery image
    after them in its original order (2 + its original distance), the usual way to score top-k re-ranking.
    Replaces `original` (Q, G), which must hold non-negative distances, in place."""
    np.maximum(original, 0.0, out=original)
    original += 2.0
    ok = idx >= 0
    original[np.nonzero(ok)[0], idx[ok]] = dist[ok]
    return original
