"""The one home of query x gallery distances; every name says what it returns.

- `cosine_similarity(q, g)`: dot products of the L2-normalised rows.
- `cosine_distance(q, g)`: 1 - cosine similarity.
- `squared_euclidean(q, g)`: |q - g|^2 (same ranking as the Euclidean distance, no square root).
- `half_squared_euclidean(q, g)`: |q - g|^2 / 2, which equals the cosine distance on unit vectors;
  used for beta-mixed features (docs/method.md section 4) that are not unit length.

`DistanceChunks` yields the same numbers a block of query rows at a time, so a metric never needs
the full matrix; the whole-matrix functions are its single block. `normalized=True` (cosine only)
says the inputs are already unit rows: then the distance is the plain 1 - q @ g.T, bit for bit. float32
products run on the machine's fastest exact kernel (`reid.gemm.matmul_nt`).
The training losses keep their own differentiable batch distance (reid.losses._common).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from reid.gemm import matmul_nt

METRICS = ("cosine", "squared_euclidean", "half_squared_euclidean")
# Older spellings accepted by the public metric functions: "euclidean" always meant squared Euclidean there.
ALIASES = {"euclidean": "squared_euclidean"}
# Default chunk: about this many bytes of distances at a time.
_CHUNK_BYTES = 64 * 2**20


def to_numpy(x) -> np.ndarray:
    """An array from a NumPy array, list or (CPU or GPU) torch tensor, without copying when possible."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def to_tensor(x, name: str, device: str | torch.device | None = None, keep_float64: bool = False) -> torch.Tensor:
    """The one input conversion of the inference math: a real float32 (or kept float64) tensor on `device`.

    Accepts NumPy arrays, lists and tensors; complex or boolean input is a ValueError naming `name`.
    """
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers, got {t.dtype}")
    dtype = torch.float64 if keep_float64 and t.dtype == torch.float64 else torch.float32
    return t.to(device=device if device is not None else t.device, dtype=dtype)


def l2_normalize(x):
    """Rows divided by their L2 norm (at least 1e-12): the one normalisation, for arrays and tensors alike."""
    if isinstance(x, torch.Tensor):
        return torch.nn.functional.normalize(x, dim=1)
    return torch.nn.functional.normalize(torch.from_numpy(np.ascontiguousarray(x)), dim=1).numpy()


def canonical_metric(metric: str) -> str:
    """The metric's full name ("euclidean" -> "squared_euclidean"); ValueError for an unknown one."""
    name = ALIASES.get(metric, metric)
    if name not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    return name


def auto_chunk_size(num_gallery: int, itemsize: int = 4) -> int:
    """Rows per chunk so that one chunk of distances holds about 64 MiB."""
    return max(1, _CHUNK_BYTES // max(1, num_gallery * itemsize))


class DistanceChunks:
    """Distances between query features (Q, D) and gallery features (G, D), row chunk by row chunk.

    Computed in float32 unless a float64 input is given (half squared Euclidean always accumulates
    in float64 and returns the input precision). The gallery is never copied.
    """

    def __init__(self, q_feats, g_feats, metric: str = "cosine", normalized: bool = False) -> None:
        self.metric = canonical_metric(metric)
        q, g = to_numpy(q_feats), to_numpy(g_feats)
        if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
            raise ValueError(f"features must be (N, D) with the same D, got {q.shape} and {g.shape}")
        dtype = np.float64 if np.float64 in (q.dtype, g.dtype) else np.float32
        self.q, self.g = q.astype(dtype, copy=False), g.astype(dtype, copy=False)
        self.normalized = normalized
        self.shape = (q.shape[0], g.shape[0])
        self.dtype = dtype
        if self.metric == "cosine" and not normalized:
            tiny = np.finfo(dtype).tiny
            self.q_scale = 1 / np.maximum(np.sqrt(np.einsum("ij,ij->i", self.q, self.q)), tiny)
            self.g_scale = 1 / np.maximum(np.sqrt(np.einsum("ij,ij->i", self.g, self.g)), tiny)
        elif self.metric == "squared_euclidean":
            self.g_sq = np.einsum("ij,ij->i", self.g, self.g)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """(stop - start, G) distances of queries start..stop-1, a new writable array."""
        q = self.q[start:stop]
        if self.metric == "half_squared_euclidean":
            qt, gt = torch.from_numpy(q).double(), torch.from_numpy(self.g).double()
            d = 0.5 * (qt.pow(2).sum(1, keepdim=True) + gt.pow(2).sum(1)[None]) - qt @ gt.T
            return d.clamp_(min=0.0).to(torch.from_numpy(q).dtype).numpy()
        if self.metric == "cosine" and self.normalized:
            return (1.0 - self._product(q)).numpy()
        d = self._product(q).numpy()
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

    def _product(self, q: np.ndarray) -> torch.Tensor:
        """q @ g.T as a new tensor; contiguous float32 on the machine's fastest exact kernel (reid.gemm)."""
        if self.dtype == np.float32 and q.flags.c_contiguous and self.g.flags.c_contiguous:
            return matmul_nt(torch.from_numpy(q), torch.from_numpy(self.g))
        return torch.from_numpy(q @ self.g.T)  # strided views as they are: never a copy of the gallery

    def chunks(self, chunk_size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (first query index, distance rows) over all queries."""
        step = chunk_size or auto_chunk_size(self.shape[1], np.dtype(self.dtype).itemsize)
        for s in range(0, self.shape[0], step):
            yield s, self.rows(s, min(s + step, self.shape[0]))


def pairwise_distances(q_feats, g_feats, metric: str = "cosine", normalized: bool = False) -> np.ndarray:
    """The full (num_query, num_gallery) matrix of `metric` (one of METRICS, or "euclidean")."""
    dc = DistanceChunks(q_feats, g_feats, metric, normalized)
    return dc.rows(0, dc.shape[0])


def cosine_distance(q_feats, g_feats, normalized: bool = False) -> np.ndarray:
    """1 - cosine similarity (Q, G); `normalized=True` trusts the rows to be unit length already."""
    return pairwise_distances(q_feats, g_feats, "cosine", normalized)


def cosine_similarity(q_feats, g_feats, normalized: bool = False) -> np.ndarray:
    """Cosine similarity (Q, G) of the rows."""
    return 1.0 - cosine_distance(q_feats, g_feats, normalized)


def squared_euclidean(q_feats, g_feats) -> np.ndarray:
    """|q - g|^2 (Q, G), >= 0."""
    return pairwise_distances(q_feats, g_feats, "squared_euclidean")


def half_squared_euclidean(q_feats, g_feats) -> np.ndarray:
    """|q - g|^2 / 2 (Q, G), >= 0; equals `cosine_distance` on unit vectors."""
    return pairwise_distances(q_feats, g_feats, "half_squared_euclidean")
