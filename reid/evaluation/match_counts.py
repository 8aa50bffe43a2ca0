"""Ranks of every query's true matches for a whole chunk of distance rows, in one compiled pass.

The ranking metrics (CMC, AP, mINP, MAP@R) need only the 0-based position of
each true match in the query's stable-sorted list: the number of valid entries
that come before it, i.e. entries with a smaller distance, or the same distance
and a smaller gallery index. For a chunk of query rows this is counted without
sorting: the matches of each row are sorted by (distance, index) (a few dozen),
and every entry no farther than the hardest match is sent to the first match
it precedes; a prefix sum of those counts is the rank of every match. A row
with few such entries binary-searches each of them; a row with many (a hard
query, a weak model) counts, for every entry, the matches strictly closer in
M vectorised comparison passes and settles exact ties with the gallery index.
No Python loop per query; rows run in parallel. Excluded entries (junk, same
identity and camera, the query itself) are NaN and never counted.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["chunk_match_ranks"]


# Per-entry cost of the binary search (unpredictable branches) over one vectorised comparison, per search step
# (measured ~140 for 5 steps on the loaded 2-core machine):
# rows with many entries before their hardest match are bucketed by counting comparisons instead.
_SEARCH_COST = 30


@numba.njit(cache=True, nogil=True)
def _after(pos_val, pos_col, lo, hi, v, c):  # pragma: no cover - compiled
    """First index in lo..hi whose match is ordered after entry (v, c): (distance, gallery index) order."""
    while lo < hi:
        mid = (lo + hi) // 2
        pv = pos_val[mid]
        if pv < v or (pv == v and pos_col[mid] <= c):
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(parallel=True, cache=True, nogil=True)
def _count(d, start, pos_val, pos_col, out):  # pragma: no cover - compiled
    g = d.shape[1]
    for b in numba.prange(d.shape[0]):
        s, e = start[b], start[b + 1]
        m = e - s
        if m == 0:
            continue
        hist = np.zeros(m + 1, np.int64)
        hardest = pos_val[e - 1]
        row = d[b]
        near = 0
        for c in range(g):  # entries that can precede a match (NaN never does)
            near += row[c] <= hardest
        if near * _SEARCH_COST * np.log2(m + 1) < m * g:
            for c in range(g):
                v = row[c]
                if v <= hardest:
                    hist[_after(pos_val, pos_col, s, e, v, c) - s] += 1
        else:  # bucket = number of matches strictly closer, by m vectorised comparison passes
            bucket = np.zeros(g, np.int32)
            for j in range(s, e):
                pj = pos_val[j]
                for c in range(g):
                    bucket[c] += not (row[c] <= pj)  # NaN: counted past every match
            for c in range(g):
                k = bucket[c]
                if k < m:
                    if pos_val[s + k] == row[c]:  # a tie with a match: order by gallery index
                        k = _after(pos_val, pos_col, s + k, e, row[c], c) - s
                    hist[k] += 1
        acc = 0
        for j in range(m):
            acc += hist[j]
            out[s + j] = acc


def chunk_match_ranks(chunk: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted 0-based ranks of the matches (rows[p], cols[p]) of a chunk of distance rows.

    chunk: (B, G) float32/float64 distances, NaN where excluded (matches must not be NaN).
    rows, cols: (P,) row in the chunk and gallery index of every true match.
    Returns (start, ranks): the ranks of row b are ranks[start[b]:start[b + 1]], ascending.
    """
    chunk = np.ascontiguousarray(chunk)
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    vals = chunk[rows, cols]
    order = np.lexsort((cols, vals, rows))  # by row, then distance, then gallery index
    counts = np.bincount(rows, minlength=chunk.shape[0])
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    ranks = np.empty(len(rows), np.int64)
    _count(chunk, start, vals[order], cols[order], ranks)
    return start, ranks


def segment_positions(start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For rows given as segments start[b]:start[b+1]: (row of each entry, 1-based position in its row, row sizes)."""
    sizes = np.diff(start)
    owner = np.repeat(np.arange(len(sizes)), sizes)
    k = np.arange(int(start[-1])) - start[:-1][owner] + 1
    return owner, k, sizes


def segment_sums(values: np.ndarray, owner: np.ndarray, num_rows: int) -> np.ndarray:
    """Per-row sums of `values` (float64), 0 for empty rows."""
    return np.bincount(owner, weights=values, minlength=num_rows)
