"""Where k-reciprocal re-ranking gets its distances: features (blocked Gram products) or given matrices.

A source answers two questions about the joint (query then gallery) set:
the k nearest points of every point with the row maxima and the raw query x
gallery block (``scan``), and the distance of arbitrary pairs (``pairs``).

The feature scan is bound by the symmetric Gram product (each block of the
upper triangle serves its rows and its columns). Everything else in it is kept
to a few cheap passes per block (on `pass_threads()`): the running k nearest are
updated with a threshold filter instead of a top-k of every block (once a row
holds k candidates only entries below its current k-th distance can enter, and
after the first blocks these are a handful per row), found through minima of
32-column strips. The products run on `reid.gemm.matmul_nt` (the fastest exact float32
kernel of the machine). Distances are rounded as |c|^2 - 2 a.c, then + |a|^2,
the order the dense reference uses: folding the norms into the product as
extra columns was measured to flip float32 near-ties at the k-th neighbour.
"""

from __future__ import annotations

import os

import torch

from reid.errors import SettingError
from reid.gemm import matmul_nt

__all__ = ["FeatureSource", "MatrixSource", "Source", "pass_threads"]


def pass_threads() -> int:
    """CPU threads of the memory-bound passes and sparse stages: torch's count unless REID_RERANK_PASS_THREADS
    says otherwise.

    On an idle machine all cores are fastest (Market size: 3.3 s with 2 threads vs 4.3 s with 1 on the
    2-core development machine); on shared, loaded cores one thread was several times faster, so
    ``REID_RERANK_PASS_THREADS=1`` is the setting for busy machines (tools/bench_rerank.py --pass-threads
    compares both in one run).
    """
    value = os.environ.get("REID_RERANK_PASS_THREADS", str(torch.get_num_threads()))
    if not value.isdigit() or int(value) < 1:
        raise SettingError(f"REID_RERANK_PASS_THREADS must be a positive integer, got {value!r}")
    return int(value)


class Source:
    """Distances of the joint (query then gallery) set, row i holding column i of the port's matrix."""

    n: int
    num_query: int

    def scan(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, k) distances and indices of the nearest points (nearest first), (N,) row maxima,
        and the (Q, G) raw query x gallery distances."""
        raise NotImplementedError

    def pairs(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Distances d(rows[p], cols[p]) (row rows[p] of the joint matrix) as a (P,) float32 tensor."""
        raise NotImplementedError

    def settle_near_ties(
        self, near_d: torch.Tensor, near: torch.Tensor, rowmax: torch.Tensor, cuts: tuple[int, ...]
    ) -> None:
        """Reorder rows whose nearest lists are cut between two points float32 cannot tell apart (in place).

        Given distances are exact as given: nothing to do (feature sources override this).
        """


class _Nearest:
    """Running k smallest (value, column) of every row, nearest first."""

    def __init__(self, n: int, k: int, device: torch.device) -> None:
        self.v = torch.full((n, k), float("inf"), device=device)
        self.i = torch.zeros((n, k), dtype=torch.long, device=device)
        self.k = k

    def threshold(self, rows: slice) -> torch.Tensor:
        """The current k-th smallest value of each row (inf until k values are held)."""
        return self.v[rows, -1]

    def dense(self, a: int, d: torch.Tensor, offset: int) -> None:
        """Merge a whole block (rows a.., columns offset..): the path for rows still holding < k values."""
        v, i = d.topk(min(self.k, d.shape[1]), dim=1, largest=False)
        rows = slice(a, a + d.shape[0])
        cand_v = torch.cat([self.v[rows], v], 1)
        cand_i = torch.cat([self.i[rows], i + offset], 1)
        top_v, pos = cand_v.topk(self.k, dim=1, largest=False)
        self.v[rows] = top_v
        self.i[rows] = cand_i.gather(1, pos)

    def sparse(self, rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor) -> None:
        """Merge scattered candidates (row, column, value), rows in ascending order."""
        if rows.numel() == 0:
            return
        touched, count = torch.unique_consecutive(rows, return_counts=True)
        m, k, dev = touched.numel(), self.k, rows.device
        slot = torch.repeat_interleave(torch.arange(m, device=dev), count)
        pos = torch.arange(rows.numel(), device=dev) - (torch.cumsum(count, 0) - count)[slot] + k
        pad_v = torch.full((m, k + int(count.max())), float("inf"), device=dev)
        pad_i = torch.zeros(pad_v.shape, dtype=torch.long, device=dev)
        pad_v[:, :k], pad_i[:, :k] = self.v[touched], self.i[touched]
        pad_v[slot, pos], pad_i[slot, pos] = vals, cols
        top_v, at = pad_v.topk(k, dim=1, largest=False)
        self.v[touched], self.i[touched] = top_v, pad_i.gather(1, at)


class FeatureSource(Source):
    """Squared Euclidean distances of feature rows, computed in blocks, never N x N.

    Holds the (N, D) features (normalised in place when asked) and their squared norms.
    """

    def __init__(self, x: torch.Tensor, num_query: int, chunk_size: int, normalize: bool) -> None:
        """`x` (N, D) float32, queries first, is the working copy: normalised in place when asked."""
        self.n, self.dim = x.shape
        self.num_query, self.block = num_query, chunk_size
        threads = torch.get_num_threads()
        if x.device.type == "cpu":  # memory-bound passes: pass_threads() (see _scan)
            torch.set_num_threads(pass_threads())
        try:
            self.x, self.sq = self._prepare(x, normalize)
        finally:
            torch.set_num_threads(threads)

    @classmethod
    def from_pair(
        cls, q: torch.Tensor, g: torch.Tensor, chunk_size: int, normalize: bool, device: torch.device
    ) -> FeatureSource:
        """A source over a joint copy of the query and gallery features (the callers' stay untouched)."""
        x = torch.empty((q.shape[0] + g.shape[0], q.shape[1]), device=device)
        x[: q.shape[0]] = q
        x[q.shape[0] :] = g
        return cls(x, q.shape[0], chunk_size, normalize)

    def _prepare(self, x: torch.Tensor, normalize: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Check, normalise (in place) and take the squared norms of the joint features."""
        dim, device = self.dim, x.device
        norms = torch.linalg.vector_norm(x, dim=1)
        if not torch.isfinite(norms).all():
            raise ValueError("features contain NaN or infinity")
        if normalize:  # as F.normalize: x / max(|x|, 1e-12), in place; rows already of unit length
            # (within float32 rounding of their norm) stay as they are: dividing them by 1 +- 1e-7 only
            # moves last bits, which reorders float32 near-ties against the caller's own features
            unit = (norms - 1.0).abs_() <= _UNIT_TOL
            x.div_(torch.where(unit, 1.0, norms.clamp(min=1e-12))[:, None])
        sq = torch.empty(self.n, device=device)
        step = max(1, (1 << 22) // max(1, dim))  # row blocks: no (N, D) temporary (770 MB at MSMT17 2048-d)
        for a in range(0, self.n, step):
            sq[a : a + step] = (x[a : a + step] * x[a : a + step]).sum(1)
        return x, sq

    def scan(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out = torch.empty((self.num_query, self.n - self.num_query), device=self.x.device)
        return (*self.nearest(k, out), out)

    def nearest(self, k: int, out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, k) distances and indices of the nearest (nearest first) and (N,) row maxima; the raw
        query x gallery block goes into `out` when given (k-NN-list re-ranking needs none of it)."""
        n, dev = self.n, self.x.device
        near = _Nearest(n, k, dev)
        filled = torch.zeros(n, dtype=torch.bool, device=dev)  # rows already holding k values
        rowmax = torch.full((n,), float("-inf"), device=dev)
        threads = torch.get_num_threads()
        post = pass_threads() if dev.type == "cpu" else threads
        try:
            self._scan(near, filled, rowmax, out, threads, post)
        finally:
            torch.set_num_threads(threads)
        # Clamping is monotone, so selecting before clamping selects the same entries.
        return near.v.clamp_(min=0), near.i, rowmax.clamp_(min=0)

    def _scan(
        self,
        near: _Nearest,
        filled: torch.Tensor,
        rowmax: torch.Tensor,
        out: torch.Tensor | None,
        threads: int,
        post: int,
    ) -> None:
        """The block loop: products on all threads, the bookkeeping after each on ``post`` threads.

        The per-block passes (strip minima, maxima, merges) are memory-bound and
        several times slower multithreaded when the cores are shared.
        """
        n, nq, b = self.n, self.num_query, self.block
        for a in range(0, n, b):
            ea = min(a + b, n)
            for c in range(a, n, b):  # upper block triangle: each block serves its rows and its columns
                ec = min(c + b, n)
                torch.set_num_threads(threads)
                d = matmul_nt(self.x[a:ea], self.x[c:ec])
                torch.set_num_threads(post)
                torch.add(self.sq[c:ec].unsqueeze(0), d, alpha=-2.0, out=d)  # |c|^2 - 2 a.c, as addmm rounds it
                d.add_(self.sq[a:ea, None])  # clamped at the end: selection commutes with clamping
                self._rows_update(near, filled, a, d, c)
                rowmax[a:ea] = torch.maximum(rowmax[a:ea], d.amax(1))
                if c != a:
                    self._rows_update(near, filled, c, d.T, a)
                    rowmax[c:ec] = torch.maximum(rowmax[c:ec], d.amax(0))
                if out is not None and a < nq and ec > nq:
                    r, c0 = min(ea, nq), max(c, nq)
                    out[a:r, c0 - nq : ec - nq] = d[: r - a, c0 - c :].clamp(min=0)
                del d

    @staticmethod
    def _rows_update(near: _Nearest, filled: torch.Tensor, a: int, d: torch.Tensor, offset: int) -> None:
        """Merge block d (rows a.., columns offset..) into the running nearest of its rows.

        Rows already holding k values only take entries below their k-th
        distance; these are found through minima of 64-column strips, so the
        exact comparison touches only the strips that hold one.
        """
        rows = slice(a, a + d.shape[0])
        thr, ready = near.threshold(rows), filled[rows]
        found = _below(d, thr, near.k, ready)
        if found is None:  # too few strips to bound a row that holds < k values yet
            near.dense(a, d, offset)
        else:
            r, c = found
            near.sparse(r + a, c + offset, d[r, c])
        filled[rows] = torch.isfinite(near.threshold(rows))

    def settle_near_ties(
        self, near_d: torch.Tensor, near: torch.Tensor, rowmax: torch.Tensor, cuts: tuple[int, ...]
    ) -> None:
        """Where a cut (a prefix the method uses: the k1 + 1, round(k1/2) + 1 and k2 nearest) falls between
        two listed points whose float32 distances are too close for float32 to order, recompute that
        row's listed distances in float64 and sort the row by them (in place).

        Two distances ~1e-7 apart can round to the same float32 value (or swap), and the k-reciprocal
        sets then differ from float64's: at half Market two rows did, moving 515 output entries of 55
        query rows by up to 7e-3. Only such rows are recomputed (a few in ten thousand); the list holds
        a few points past the last cut, so a point tying with the cut from outside is listed too.
        """
        k = near.shape[1]
        cut = torch.tensor(sorted({c for c in cuts if 0 < c < k}), dtype=torch.long, device=near.device)
        if cut.numel() == 0:
            return
        gap = near_d[:, cut] - near_d[:, cut - 1]
        rows = torch.nonzero((gap <= _TIE_RTOL * rowmax[:, None]).any(1)).flatten()
        if rows.numel() == 0:
            return
        cols, x = near[rows], self.x
        step = max(1, (1 << 20) // (k * self.dim))  # ~8 MB of gathered float64 features at a time
        d64 = torch.empty(cols.shape, dtype=torch.float64, device=x.device)
        for s in range(0, rows.numel(), step):
            a = x[rows[s : s + step]].double()[:, None, :]
            d64[s : s + step] = (x[cols[s : s + step]].double() - a).square_().sum(-1)
        order = torch.argsort(d64, dim=1, stable=True)
        near[rows] = cols.gather(1, order)
        near_d[rows] = d64.gather(1, order).float()

    def pairs(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        x, sq = self.x, self.sq
        out = torch.empty(rows.shape, device=x.device)
        step = max(1, (1 << 20) // self.dim)  # ~8 MB of gathered features
        for s in range(0, rows.shape[0], step):
            r, c = rows[s : s + step], cols[s : s + step]
            out[s : s + step] = (sq[r] + sq[c] - 2.0 * (x[r] * x[c]).sum(1)).clamp_(min=0)
        return out


_STRIP = 32
_UNIT_TOL = 4 * torch.finfo(torch.float32).eps  # |norm - 1| of rows taken as already normalised
_TIE_RTOL = 1e-5  # listed distances closer than this times the row maximum may be misordered by float32


def _below(d: torch.Tensor, thr: torch.Tensor, k: int, ready: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(row, column) of the entries of d (R, C) at or below each row's bar, visiting only strips that hold one.

    The bar is thr[row] for rows already holding k values (ready), else the
    k-th smallest of the row's strip minima: k distinct entries lie at or below
    it, so the k nearest in this block all pass. None if d has fewer than k strips.
    """
    n_rows, n_cols = d.shape
    if d.is_contiguous() and n_cols % _STRIP == 0:  # rows of the block: strips along the row
        strips, along = d.view(n_rows, n_cols // _STRIP, _STRIP), True
        mins = strips.amin(2)
    elif d.T.is_contiguous() and n_cols % _STRIP == 0:  # the transpose of a row-major block: strips down its columns
        strips, along = d.T.view(n_cols // _STRIP, _STRIP, n_rows), False
        mins = strips.amin(1).T
    elif bool(ready.all()):
        return torch.nonzero(d <= thr[:, None], as_tuple=True)
    else:
        return None
    if not bool(ready.all()):
        if mins.shape[1] < k:
            return None
        thr = torch.where(ready, thr, mins.kthvalue(k, dim=1).values)
    r, s = torch.nonzero(mins <= thr[:, None], as_tuple=True)
    vals = strips[r, s] if along else strips[s, :, r]
    h, j = torch.nonzero(vals <= thr[r][:, None], as_tuple=True)
    return r[h], s[h] * _STRIP + j


class MatrixSource(Source):
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

    def scan(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        val, idx, rowmax = [], [], []
        for a in range(0, self.n, self.block):
            d = self._rows(a, min(a + self.block, self.n))
            top = d.topk(k, dim=1, largest=False)
            val.append(top.values)
            idx.append(top.indices)
            rowmax.append(d.amax(1))
        return torch.cat(val), torch.cat(idx), torch.cat(rowmax), self.qg.clone()

    def pairs(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        nq = self.num_query
        i, e = rows, cols
        iq, ig = i.clamp(max=nq - 1), (i - nq).clamp(min=0)
        eq, eg = e.clamp(max=nq - 1), (e - nq).clamp(min=0)
        from_query = torch.where(i < nq, self.qq[eq, iq], self.qg[eq, ig])
        from_gallery = torch.where(i < nq, self.qg[iq, eg], self.gg[eg, ig])
        return torch.where(e < nq, from_query, from_gallery)
