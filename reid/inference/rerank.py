"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) without N x N matrices.

The method, as in the authors' published Python port (``re_ranking``), with
N = num_query + num_gallery points and d the squared Euclidean distance:

1. every row of the N x N distance matrix is divided by its maximum;
2. initial rank: the k1 + 1 nearest points of every point (itself first);
3. R(i): the k1-reciprocal neighbours of i; each candidate c in R(i) whose
   round(k1/2)-reciprocal set R'(c) shares more than 2/3 of its members with
   R(i) adds R'(c) (the expansion rule);
4. V[i] = exp(-d(i, .)) on the expanded set, normalised to sum 1;
5. local query expansion: V[i] <- mean of V over the k2 nearest points of i;
6. Jaccard distance 1 - sum(min) / sum(max) between the V of a query and of
   a gallery item; final = (1 - lambda) * jaccard + lambda * d (normalised).

Here nothing N x N is ever held: the nearest neighbours and row maxima come
from blocked matrix products (each block used for both of its row sets), V
is a padded sparse encoding of O(N k1) entries, and the Jaccard term is only
computed for query x gallery pairs, by joining sparse rows chunk by chunk.
All work is torch, on the CPU (multithreaded) or on a CUDA device.

Distances: the feature form works on squared Euclidean distances of (by
default L2-normalised) features, as the authors' feature code does. The
published distance-matrix port squares the Euclidean distances it is given;
feeding it distances that are already squared (as several toolboxes do)
squares twice. ``k_reciprocal_from_distances`` uses its inputs as they are
unless ``square=True`` asks for the port's squaring.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


__all__ = ["k_reciprocal", "k_reciprocal_from_distances"]

_PAIR_BUDGET = 1 << 22  # query x gallery joins handled at once in the Jaccard step


def k_reciprocal(
    q_feats: np.ndarray | torch.Tensor,
    g_feats: np.ndarray | torch.Tensor,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    normalize: bool = True,
    device: str | torch.device | None = None,
    chunk_size: int = 2048,
) -> np.ndarray:
    """Re-ranked query x gallery distances from features.

    q_feats (Q, D), g_feats (G, D): float features; L2-normalised here unless
    ``normalize=False``. Distances are squared Euclidean (never squared again).
    device: torch device for the work (default: CUDA if available, else CPU).
    chunk_size: rows per block of the blocked distance computation.
    Returns the (Q, G) float32 re-ranked distance matrix.
    """
    _check_params(k1, k2, lambda_value, chunk_size)
    dev = _pick_device(device)
    q = _to_tensor(q_feats, dev, "q_feats")
    g = _to_tensor(g_feats, dev, "g_feats")
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"q_feats {tuple(q.shape)} and g_feats {tuple(g.shape)} must be (n, D) with the same D")
    if q.shape[0] == 0 or g.shape[0] == 0:
        raise ValueError("need at least one query and one gallery feature")
    x = torch.cat([q, g])
    del q, g
    if normalize:
        x = F.normalize(x, dim=1)
    if not torch.isfinite(x).all():
        raise ValueError("features contain NaN or infinity")
    src = _FeatureSource(x, num_query=q_feats.shape[0], chunk_size=chunk_size)
    return _rerank(src, k1, k2, lambda_value, chunk_size)


def k_reciprocal_from_distances(
    q_g: np.ndarray | torch.Tensor,
    q_q: np.ndarray | torch.Tensor,
    g_g: np.ndarray | torch.Tensor,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    square: bool = False,
    device: str | torch.device | None = None,
    chunk_size: int = 2048,
) -> np.ndarray:
    """Re-ranked distances from the three distance matrices (the port's API).

    q_g (Q, G), q_q (Q, Q), g_g (G, G): distances used as given, so pass
    squared Euclidean distances; ``square=True`` squares them first, which is
    what the published port does to the plain Euclidean distances it expects.
    Rows of the joint matrix are taken as the port takes them (its columns),
    so asymmetric inputs give the port's result too. Returns (Q, G) float32.
    """
    _check_params(k1, k2, lambda_value, chunk_size)
    dev = _pick_device(device)
    mats = []
    for name, m in (("q_g", q_g), ("q_q", q_q), ("g_g", g_g)):
        t = _to_tensor(m, dev, name, keep_float64=True)
        if square:
            t = t * t
        mats.append(t.float())
    qg, qq, gg = mats
    nq, ng = qg.shape if qg.ndim == 2 else (-1, -1)
    if qg.ndim != 2 or qq.shape != (nq, nq) or gg.shape != (ng, ng) or nq == 0 or ng == 0:
        raise ValueError(
            f"shapes q_g {tuple(qg.shape)}, q_q {tuple(qq.shape)}, g_g {tuple(gg.shape)} "
            "must be (Q, G), (Q, Q), (G, G) with Q, G >= 1"
        )
    if not all(torch.isfinite(m).all() for m in mats):
        raise ValueError("distance matrices contain NaN or infinity")
    return _rerank(_MatrixSource(qg, qq, gg, chunk_size=chunk_size), k1, k2, lambda_value, chunk_size)


def _check_params(k1: int, k2: int, lambda_value: float, chunk_size: int) -> None:
    if int(k1) != k1 or k1 < 1 or int(k2) != k2 or k2 < 1:
        raise ValueError(f"k1 and k2 must be integers >= 1, got k1={k1}, k2={k2}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"lambda_value must lie in [0, 1], got {lambda_value}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")


def _rerank(src: _Source, k1: int, k2: int, lambda_value: float, chunk: int) -> np.ndarray:
    n, nq = src.n, src.num_query
    k_full = min(k1 + 1, n)
    k_half = min(int(np.around(k1 / 2.0)) + 1, n)
    k_qe = min(k2, n)
    ranks, rowmax, out = src.scan(max(k_full, k_qe))
    if not bool((rowmax > 0).all()):
        raise ValueError("a point has distance 0 to every point; re-ranking is undefined")
    cols, vals = _encode(src, ranks[:, :k_full], ranks[:, :k_half], rowmax, chunk)
    if k2 != 1:
        cols, vals = _local_query_expansion(cols, vals, ranks[:, :k_qe], chunk)
    del ranks
    _jaccard_combine(cols, vals, out, rowmax, lambda_value)
    return out.cpu().numpy()


def _encode(
    src: _Source, near: torch.Tensor, near_half: torch.Tensor, rowmax: torch.Tensor, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Expanded k-reciprocal sets with Gaussian weights, as padded sparse rows.

    near (N, k1+1), near_half (N, kh): nearest points, nearest first.
    Returns cols (N, L) int64 (sentinel N pads each row's end) and vals (N, L)
    float32 (0 on the padding), each row's values summing to 1.
    """
    n, dev = near.shape[0], near.device
    # round(k1/2)-reciprocal sets R'(c) of every point, -1 where not reciprocal.
    half = torch.empty_like(near_half)
    for a in range(0, n, chunk):
        fh = near_half[a : a + chunk]
        own = torch.arange(a, a + fh.shape[0], device=dev)
        recip = (near_half[fh] == own[:, None, None]).any(-1)
        half[a : a + chunk] = torch.where(recip, fh, -1)
    # The port's test |R'(c) & R(i)| > 2/3 |R'(c)|, in float64 as it does it.
    threshold = (2.0 / 3.0) * (half >= 0).sum(1).double()

    rows_c, rows_v = [], []
    step = max(1, chunk // 4)
    for a in range(0, n, step):
        fi = near[a : a + step]
        own = torch.arange(a, a + fi.shape[0], device=dev)
        recip = (near[fi] == own[:, None, None]).any(-1)  # R(i) as a mask over fi
        rset = torch.where(recip, fi, -2)
        cand = half[fi]  # (c, k1+1, kh): R'(c) of every forward neighbour c
        shared = (cand.unsqueeze(-1) == rset[:, None, None, :]).any(-1).sum(-1)
        accept = recip & (shared.double() > threshold[fi])
        union = torch.cat(
            [torch.where(recip, fi, n), torch.where(accept[..., None] & (cand >= 0), cand, n).flatten(1)], dim=1
        )
        cols = _unique_rows(union, n)
        valid = cols < n
        d = src.pairs(own, torch.where(valid, cols, 0)) / rowmax[own, None]
        w = torch.exp(-d) * valid
        rows_c.append(cols)
        rows_v.append(w / w.sum(1, keepdim=True))
    return _stack_padded(rows_c, rows_v, n)


def _unique_rows(idx: torch.Tensor, sentinel: int) -> torch.Tensor:
    """Each row's distinct values ascending, padded at the end with sentinel, trimmed."""
    s, _ = idx.sort(1)
    dup = torch.zeros_like(s, dtype=torch.bool)
    dup[:, 1:] = s[:, 1:] == s[:, :-1]
    s, _ = torch.where(dup, sentinel, s).sort(1)
    width = max(1, int((s < sentinel).sum(1).max()))
    return s[:, :width]


def _stack_padded(cols: list[torch.Tensor], vals: list[torch.Tensor], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(c.shape[1] for c in cols)
    cols = [F.pad(c, (0, width - c.shape[1]), value=n) for c in cols]
    vals = [F.pad(v, (0, width - v.shape[1]), value=0.0) for v in vals]
    return torch.cat(cols), torch.cat(vals)


def _local_query_expansion(
    cols: torch.Tensor, vals: torch.Tensor, near: torch.Tensor, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """V[i] <- mean of V[j] over the k2 nearest j of i (near: (N, k2)), sparse rows merged."""
    n, k = near.shape[0], near.shape[1]
    out_c, out_v = [], []
    step = max(1, chunk // 4)
    for a in range(0, n, step):
        nb = near[a : a + step]
        c = cols[nb].flatten(1)
        v = vals[nb].flatten(1)
        s, order = c.sort(1)
        v = v.gather(1, order)
        first = torch.ones_like(s, dtype=torch.bool)
        first[:, 1:] = s[:, 1:] != s[:, :-1]
        seg = first.long().cumsum(1) - 1
        merged_v = torch.zeros_like(v).scatter_add_(1, seg, v) / k
        merged_c = torch.full_like(s, n).scatter_(1, seg, s)
        width = max(1, int((merged_c < n).sum(1).max()))
        out_c.append(merged_c[:, :width])
        out_v.append(torch.where(merged_c[:, :width] < n, merged_v[:, :width], 0.0))
    return _stack_padded(out_c, out_v, n)


def _jaccard_combine(
    cols: torch.Tensor, vals: torch.Tensor, out: torch.Tensor, rowmax: torch.Tensor, lambda_value: float
) -> None:
    """out (Q, G) raw distances <- (1 - lambda) * jaccard + lambda * out / rowmax, in place.

    sum_k min(V[i, k], V[j, k]) is built by joining each query's nonzeros with
    the gallery rows that share their column (a column-sorted gallery index).
    """
    n, (nq, ng) = cols.shape[0], out.shape
    dev = cols.device
    g_cols, g_vals = cols[nq:], vals[nq:]
    keep = g_cols < n
    g_row = torch.arange(ng, device=dev)[:, None].expand_as(g_cols)[keep]
    g_col, g_val = g_cols[keep], g_vals[keep]
    order = torch.argsort(g_col, stable=True)
    g_row, g_val = g_row[order], g_val[order]
    count = torch.bincount(g_col, minlength=n + 1)
    start = torch.cumsum(count, 0) - count
    del g_col, order, keep

    q_cols, q_vals = cols[:nq], vals[:nq]
    pairs_per_row = count[q_cols].sum(1)  # sentinel column n has count 0
    max_rows = max(1, (1 << 24) // ng)
    a = 0
    while a < nq:
        budget = torch.cumsum(pairs_per_row[a : a + max_rows], 0)
        b = a + max(1, int((budget <= _PAIR_BUDGET).sum()))
        qc, qv = q_cols[a:b], q_vals[a:b]
        qk = qc < n
        q_row = torch.arange(b - a, device=dev)[:, None].expand_as(qc)[qk]
        k, v = qc[qk], qv[qk]
        cnt = count[k]
        total = int(cnt.sum())
        first = torch.cumsum(cnt, 0) - cnt
        pos = torch.arange(total, device=dev) - torch.repeat_interleave(first - start[k], cnt)
        mins = torch.minimum(torch.repeat_interleave(v, cnt), g_val[pos])
        flat = torch.repeat_interleave(q_row, cnt) * ng + g_row[pos]
        shared = torch.zeros((b - a) * ng, dtype=out.dtype, device=dev).index_add_(0, flat, mins).view(b - a, ng)
        jaccard = 1.0 - shared / (2.0 - shared)
        block = out[a:b]
        block.div_(rowmax[a:b, None]).mul_(lambda_value).add_(jaccard, alpha=1.0 - lambda_value)
        a = b


def _pick_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _to_tensor(a: np.ndarray | torch.Tensor, dev: torch.device, name: str, keep_float64: bool = False) -> torch.Tensor:
    t = a.detach() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    if t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers, got {t.dtype}")
    dtype = torch.float64 if keep_float64 and t.dtype == torch.float64 else torch.float32
    return t.to(device=dev, dtype=dtype)


class _Source:
    """Distances of the joint (query then gallery) set, row i holding column i of the port's matrix."""

    n: int
    num_query: int

    def scan(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, k) nearest indices (nearest first), (N,) row maxima, (Q, G) raw query x gallery distances."""
        raise NotImplementedError

    def pairs(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Distances d(rows[r], cols[r, l]) as a (c, L) float32 tensor (rows: (c,), cols: (c, L))."""
        raise NotImplementedError


def _merge_topk(best_v: torch.Tensor, best_i: torch.Tensor, a: int, e: int, v: torch.Tensor, i: torch.Tensor) -> None:
    cand_v = torch.cat([best_v[a:e], v], 1)
    cand_i = torch.cat([best_i[a:e], i], 1)
    top_v, pos = cand_v.topk(best_v.shape[1], dim=1, largest=False)
    best_v[a:e] = top_v
    best_i[a:e] = cand_i.gather(1, pos)


class _FeatureSource(_Source):
    """Squared Euclidean distances of feature rows, computed in blocks, never N x N."""

    def __init__(self, x: torch.Tensor, num_query: int, chunk_size: int) -> None:
        self.x, self.n, self.num_query, self.block = x, x.shape[0], num_query, chunk_size
        self.sq = (x * x).sum(1)

    def scan(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, sq, n, nq, b = self.x, self.sq, self.n, self.num_query, self.block
        best_v = torch.full((n, k), float("inf"), device=x.device)
        best_i = torch.zeros((n, k), dtype=torch.long, device=x.device)
        rowmax = torch.zeros(n, device=x.device)
        out = torch.empty((nq, n - nq), device=x.device)
        for a in range(0, n, b):
            ea = min(a + b, n)
            for c in range(a, n, b):  # upper block triangle: each block serves its rows and its columns
                ec = min(c + b, n)
                d = torch.addmm(sq[c:ec].unsqueeze(0), x[a:ea], x[c:ec].T, alpha=-2.0)
                d.add_(sq[a:ea, None]).clamp_(min=0)
                v, i = d.topk(min(k, ec - c), dim=1, largest=False)
                _merge_topk(best_v, best_i, a, ea, v, i + c)
                rowmax[a:ea] = torch.maximum(rowmax[a:ea], d.amax(1))
                if c != a:
                    v, i = d.topk(min(k, ea - a), dim=0, largest=False)
                    _merge_topk(best_v, best_i, c, ec, v.T, i.T + a)
                    rowmax[c:ec] = torch.maximum(rowmax[c:ec], d.amax(0))
                if a < nq and ec > nq:
                    r, c0 = min(ea, nq), max(c, nq)
                    out[a:r, c0 - nq : ec - nq] = d[: r - a, c0 - c :]
                del d
        return best_i, rowmax, out

    def pairs(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        x, sq = self.x, self.sq
        out = torch.empty(cols.shape, device=x.device)
        step = max(1, (1 << 24) // max(1, cols.shape[1] * x.shape[1]))  # ~64 MB of gathered features
        for s in range(0, rows.shape[0], step):
            r, c = rows[s : s + step], cols[s : s + step]
            dots = torch.bmm(x[c], x[r].unsqueeze(2)).squeeze(2)
            out[s : s + step] = (sq[r, None] + sq[c] - 2.0 * dots).clamp_(min=0)
        return out


class _MatrixSource(_Source):
    """Distances given as the port's three matrices; row i of the joint matrix is its column i."""

    def __init__(self, qg: torch.Tensor, qq: torch.Tensor, gg: torch.Tensor, chunk_size: int) -> None:
        self.qg, self.qq, self.gg, self.block = qg, qq, gg, chunk_size
        self.num_query = qq.shape[0]
        self.n = qq.shape[0] + gg.shape[0]

    def _rows(self, a: int, e: int) -> torch.Tensor:
        nq, parts = self.num_query, []
        if a < nq:
            r = min(e, nq)
            parts.append(torch.cat([self.qq[:, a:r].T, self.qg[a:r]], 1))
        if e > nq:
            s, t = max(a, nq) - nq, e - nq
            parts.append(torch.cat([self.qg[:, s:t].T, self.gg[:, s:t].T], 1))
        return torch.cat(parts)

    def scan(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx, rowmax = [], []
        for a in range(0, self.n, self.block):
            d = self._rows(a, min(a + self.block, self.n))
            idx.append(d.topk(k, dim=1, largest=False).indices)
            rowmax.append(d.amax(1))
        return torch.cat(idx), torch.cat(rowmax), self.qg.clone()

    def pairs(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        nq = self.num_query
        i, e = rows[:, None].expand_as(cols), cols
        iq, ig = i.clamp(max=nq - 1), (i - nq).clamp(min=0)
        eq, eg = e.clamp(max=nq - 1), (e - nq).clamp(min=0)
        from_query = torch.where(i < nq, self.qq[eq, iq], self.qg[eq, ig])
        from_gallery = torch.where(i < nq, self.qg[iq, eg], self.gg[eg, ig])
        return torch.where(e < nq, from_query, from_gallery)
