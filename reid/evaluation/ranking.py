"""CMC, mAP and mINP under the Market-1501 / DukeMTMC-reID protocol (docs/method.md section 5).

Per query: gallery images with the query's identity AND camera are removed, junk
(gallery pid -1, or `junk_mask`) is removed, pid 0 distractors stay as
non-matches. A query left without a true match is skipped and counted. Ties keep
gallery order (as a stable sort would).

Queries are processed in row chunks (a copy of at most ~64 MiB of distances at a
time), and for each query only the ranks of its true matches are computed
(see ranks.py), so the gallery is never sorted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .distance import DistanceChunks, auto_chunk_size, to_numpy
from .match_counts import chunk_match_ranks, segment_positions, segment_sums
from .single_shot import GalleryGroups, sampled_first_ranks

AP_MODES = ("standard", "trapezoid")


@dataclass
class RankResult:
    """Ranking metrics over the valid queries.

    cmc: (max_rank,) hit rate at rank 1..max_rank. ap / inp: (num_query,) per-query
    values, NaN for skipped queries.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid: int
    num_skipped: int
    ap: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    inp: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def as_dict(self) -> dict:
        return {
            "rank1": float(self.cmc[0]),
            "rank5": float(self.cmc[min(4, len(self.cmc) - 1)]),
            "rank10": float(self.cmc[min(9, len(self.cmc) - 1)]),
            "mAP": self.mAP,
            "mINP": self.mINP,
            "num_valid": self.num_valid,
            "num_skipped": self.num_skipped,
        }


def evaluate_rank(
    distmat,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    max_rank: int = 50,
    *,
    junk_mask=None,
    single_gallery_shot: bool = False,
    ap_mode: str = "standard",
    num_repeats: int = 10,
    seed: int = 0,
    chunk_size: int | None = None,
) -> RankResult:
    """Evaluate a (num_query, num_gallery) distance matrix (NumPy array or tensor).

    junk_mask: bool (G,) or (Q, G), True = ignore that gallery image (for that query).
    single_gallery_shot: CUHK03 CMC from `num_repeats` seeded draws of one image per
    identity (see single_shot.py); mAP/mINP still use the whole gallery.
    ap_mode: "standard" (mean precision at each hit) or "trapezoid" (official
    Market-1501 MATLAB code). max_rank is capped at the gallery size.
    float32 distances are ranked in float32, anything else in float64.
    """
    distmat = to_numpy(distmat)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape {distmat.shape}")
    dtype = np.float32 if distmat.dtype in (np.float32, np.float16) else np.float64
    q, g = distmat.shape
    step = chunk_size or auto_chunk_size(g, np.dtype(dtype).itemsize)
    chunks = ((s, np.array(distmat[s : s + step], dtype=dtype)) for s in range(0, q, step))
    return _evaluate_chunks(
        chunks, distmat.shape, q_pids, g_pids, q_camids, g_camids, max_rank, junk_mask,
        single_gallery_shot, ap_mode, num_repeats, seed,
    )  # fmt: skip


def evaluate_features(
    q_feats,
    g_feats,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    metric: str = "cosine",
    chunk_size: int | None = None,
    max_rank: int = 50,
    *,
    junk_mask=None,
    single_gallery_shot: bool = False,
    ap_mode: str = "standard",
    num_repeats: int = 10,
    seed: int = 0,
) -> RankResult:
    """Like evaluate_rank, from (Q, D) query and (G, D) gallery features.

    Distances ("cosine" or squared "euclidean", see distance.DistanceChunks) are
    computed `chunk_size` queries at a time (default: ~64 MiB of distances), so
    MSMT17-size problems never hold the full matrix.
    """
    dc = DistanceChunks(q_feats, g_feats, metric)
    return _evaluate_chunks(
        dc.chunks(chunk_size), dc.shape, q_pids, g_pids, q_camids, g_camids, max_rank, junk_mask,
        single_gallery_shot, ap_mode, num_repeats, seed,
    )  # fmt: skip


def _check_ids(shape, q_pids, g_pids, q_camids, g_camids):
    arrays = [to_numpy(a).reshape(-1) for a in (q_pids, g_pids, q_camids, g_camids)]
    for name, arr, n in zip(("q_pids", "g_pids", "q_camids", "g_camids"), arrays, (shape[0], shape[1]) * 2):
        if len(arr) != n:
            raise ValueError(f"{name} has {len(arr)} entries but the distance matrix is {shape[0]} x {shape[1]}")
    return arrays


def _evaluate_chunks(
    chunks: Iterable[tuple[int, np.ndarray]],
    shape: tuple[int, int],
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    max_rank: int,
    junk_mask,
    single_gallery_shot: bool,
    ap_mode: str,
    num_repeats: int,
    seed: int,
) -> RankResult:
    """Metrics from (first row, writable distance rows) chunks covering all queries in order."""
    if ap_mode not in AP_MODES:
        raise ValueError(f"unknown ap_mode {ap_mode!r}: use 'standard' or 'trapezoid'")
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    q_pids, g_pids, q_camids, g_camids = _check_ids(shape, q_pids, g_pids, q_camids, g_camids)
    num_q, num_g = shape
    max_rank = min(max_rank, num_g)
    junk_cols, junk_rows = _junk(junk_mask, g_pids, shape)
    groups = GalleryGroups(g_pids)
    q_group = groups.find_many(q_pids)

    ap = np.full(num_q, np.nan)
    inp = np.full(num_q, np.nan)
    first = np.full(num_q, -1, dtype=np.int64)
    cmc_sum = np.zeros(max_rank)
    for start, chunk in chunks:
        if chunk.size and np.isnan(chunk.min()):  # min propagates NaN without a temporary
            raise ValueError("distance matrix contains NaN")
        if junk_cols.size:
            chunk[:, junk_cols] = np.nan
        if junk_rows is not None:
            chunk[junk_rows[start : start + len(chunk)]] = np.nan
        _score_chunk(chunk, start, q_group, groups, q_camids, g_camids, ap_mode, first, ap, inp)
        if single_gallery_shot:
            for b in np.flatnonzero(first[start : start + len(chunk)] >= 0):
                drawn = sampled_first_ranks(chunk[b], q_group[start + b], groups, num_repeats, seed, start + b)
                cmc_sum += np.count_nonzero(drawn[:, None] <= np.arange(max_rank), axis=0) / num_repeats
        del chunk  # free this chunk before the next one is made
    valid = int(np.count_nonzero(first >= 0))
    if valid == 0:
        raise ValueError("no query has a true match in the gallery")
    if not single_gallery_shot:
        hits = first[(first >= 0) & (first < max_rank)]
        cmc_sum = np.cumsum(np.bincount(hits, minlength=max_rank)).astype(np.float64)
    return RankResult(
        cmc_sum / valid, float(np.nanmean(ap)), float(np.nanmean(inp)), valid, num_q - valid, ap=ap, inp=inp
    )


def _score_chunk(chunk, start, q_group, groups, q_camids, g_camids, ap_mode, first, ap, inp) -> None:
    """Mark same identity + camera entries NaN, then rank every row's true matches at once (match_counts.py)."""
    grp = q_group[start : start + len(chunk)]
    has = np.flatnonzero(grp >= 0)
    sizes = groups.counts[grp[has]]
    row = np.repeat(has, sizes)
    offset = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    member = groups.order[np.repeat(groups.starts[grp[has]], sizes) + offset]
    same_cam = g_camids[member] == q_camids[start + row]
    chunk[row[same_cam], member[same_cam]] = np.nan
    keep = ~same_cam
    keep[keep] = ~np.isnan(chunk[row[keep], member[keep]])  # junk
    bounds, ranks = chunk_match_ranks(chunk, row[keep], member[keep])
    owner, k, m = segment_positions(bounds)
    found = m > 0
    at_hit = k / (ranks + 1)
    if ap_mode == "trapezoid":
        before = np.where(ranks > 0, (k - 1) / np.maximum(ranks, 1), 1.0)
        at_hit = (before + at_hit) / 2
    rows = start + np.flatnonzero(found)
    first[rows] = ranks[bounds[:-1][found]]
    ap[rows] = segment_sums(at_hit, owner, len(m))[found] / m[found]
    inp[rows] = m[found] / (ranks[bounds[1:][found] - 1] + 1)


def _junk(junk_mask, g_pids: np.ndarray, shape: tuple[int, int]):
    """(gallery columns that are junk for every query, (Q, G) per-query junk or None)."""
    cols = g_pids == -1
    rows = None
    if junk_mask is not None:
        jm = to_numpy(junk_mask).astype(bool, copy=False)
        if jm.shape == (shape[1],):
            cols = cols | jm
        elif jm.shape == shape:
            rows = jm
        else:
            raise ValueError(f"junk_mask must have shape ({shape[1]},) or {shape}, got {jm.shape}")
    return np.flatnonzero(cols), rows
