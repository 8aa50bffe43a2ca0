"""Query-by-gallery distances computed in row chunks, so a full matrix is never needed."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

METRICS = ("cosine", "euclidean")
# Default chunk: about this many bytes of distances at a time.
_CHUNK_BYTES = 64 * 2**20


def to_numpy(x) -> np.ndarray:
    """An array from a NumPy array, list or (CPU or GPU) torch tensor, without copying when possible."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def auto_chunk_size(num_gallery: int, itemsize: int = 4) -> int:
    """Rows per chunk so that one chunk of distances holds about 64 MiB."""
    return max(1, _CHUNK_BYTES // max(1, num_gallery * itemsize))


class DistanceChunks:
    """Distances between query features and gallery features, row chunk by row chunk.

    metric "cosine": 1 - cosine similarity (dot products scaled by the inverse norms).
    metric "euclidean": squared Euclidean distance on the features as given
    (same ranking as the Euclidean distance, without the square root).
    Features (N, D) are computed in float32 unless given as float64.
    """

    def __init__(self, q_feats, g_feats, metric: str = "cosine") -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
        q, g = to_numpy(q_feats), to_numpy(g_feats)
        if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
            raise ValueError(f"features must be (N, D) with the same D, got {q.shape} and {g.shape}")
        dtype = np.float64 if np.float64 in (q.dtype, g.dtype) else np.float32
        q, g = q.astype(dtype, copy=False), g.astype(dtype, copy=False)
        self.metric = metric
        self.q, self.g = q, g  # never copied: the gallery is used transposed in the product
        if metric == "cosine":
            tiny = np.finfo(dtype).tiny
            self.q_scale = 1 / np.maximum(np.sqrt(np.einsum("ij,ij->i", q, q)), tiny)
            self.g_scale = 1 / np.maximum(np.sqrt(np.einsum("ij,ij->i", g, g)), tiny)
        else:
            self.g_sq = np.einsum("ij,ij->i", g, g)
        self.shape = (q.shape[0], g.shape[0])
        self.dtype = dtype

    def rows(self, start: int, stop: int) -> np.ndarray:
        """(stop - start, G) distances of queries start..stop-1, a new writable array."""
        q = self.q[start:stop]
        d = q @ self.g.T
        if self.metric == "cosine":
            d *= self.q_scale[start:stop, None]
            d *= self.g_scale[None, :]
            np.subtract(1, d, out=d)
        else:
            d *= -2
            d += np.einsum("ij,ij->i", q, q)[:, None]
            d += self.g_sq[None, :]
            np.maximum(d, 0, out=d)
        return d

    def chunks(self, chunk_size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (first query index, distance rows) over all queries."""
        step = chunk_size or auto_chunk_size(self.shape[1], np.dtype(self.dtype).itemsize)
        for s in range(0, self.shape[0], step):
            yield s, self.rows(s, min(s + step, self.shape[0]))


def pairwise_distances(q_feats, g_feats, metric: str = "cosine") -> np.ndarray:
    """The full (num_query, num_gallery) distance matrix; see DistanceChunks for the metrics."""
    dc = DistanceChunks(q_feats, g_feats, metric)
    return dc.rows(0, dc.shape[0])
