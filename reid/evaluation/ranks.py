"""Exact ranks of a query's true matches without sorting the whole gallery.

Every ranking metric here (CMC, AP, mINP, MAP@R) depends only on the 0-based
positions of the true matches in the query's ranked list. The position of match
``j`` is the number of valid entries that come before it: entries with a smaller
distance, or the same distance and a smaller gallery index (the order a stable
sort gives). Counting those for the few matches of a query is cheaper than
sorting the 10^4-10^5 gallery distances, and only entries no farther than the
hardest match can count at all, so they are pulled out first.

Excluded entries (junk, same identity and camera, the query itself) are marked
NaN in the row: every comparison with NaN is false, so they never count.
"""

from __future__ import annotations

import numpy as np

# Counting costs ~M*C comparisons, sorting the C candidates ~C*log2(C): sort when M > this * log2(C)
# (measured on this machine: counting wins for M=8, C=40,000; sorting for M=16, C=4,000).
_SORT_FACTOR = 1.6


def match_ranks(row: np.ndarray, matches: np.ndarray, method: str = "auto") -> np.ndarray:
    """Sorted 0-based ranks of gallery entries `matches` in one distance row.

    row: (G,) float distances, NaN for entries excluded from the ranking.
    matches: (M,) int gallery indices of the true matches (not NaN, M >= 1).
    method: "count" (compare every candidate with every match), "sort" (sort the
    candidates, binary-search the matches) or "auto" (the cheaper one); same result.
    Returns (M,) int64 ranks among the non-NaN entries, ties broken by index.
    """
    dm = row[matches]
    cand = row[row <= dm.max()]
    if method == "auto":
        method = "sort" if len(matches) > _SORT_FACTOR * np.log2(cand.size + 2) else "count"
    if method == "sort":
        cand.sort()
        lt = np.searchsorted(cand, dm, side="left")
        eq = np.searchsorted(cand, dm, side="right") - lt
    else:
        thr = dm[:, None]
        lt = np.count_nonzero(cand < thr, axis=1)
        eq = np.count_nonzero(cand <= thr, axis=1) - lt
    lt = lt.astype(np.int64)
    for t in np.flatnonzero(eq > 1):  # another entry has the same distance: count those with a smaller index
        lt[t] += np.count_nonzero(row[: matches[t]] == dm[t])
    lt.sort()
    return lt


def average_precision(ranks: np.ndarray, mode: str = "standard") -> float:
    """AP of one query from the sorted 0-based ranks of all its true matches.

    "standard": mean over hits of precision at the hit, k / (rank_k + 1) (torchreid, fast-reid).
    "trapezoid": the official Market-1501 MATLAB `compute_AP`, which integrates the
    precision-recall curve with the trapezoid rule: each hit adds
    (precision just before it + precision at it) / 2 / num_matches, where the
    precision before rank 0 is taken as 1.
    """
    k = np.arange(1, len(ranks) + 1, dtype=np.float64)
    at_hit = k / (ranks + 1)
    if mode == "standard":
        return float(at_hit.mean())
    if mode == "trapezoid":
        before = np.where(ranks > 0, (k - 1) / np.maximum(ranks, 1), 1.0)
        return float(((before + at_hit) / 2).mean())
    raise ValueError(f"unknown ap_mode {mode!r}: use 'standard' or 'trapezoid'")
