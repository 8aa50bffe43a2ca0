"""CMC, mAP and mINP under the Market-1501 / DukeMTMC-reID protocol (METHOD.md section 5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RankResult:
    """Ranking metrics over the valid queries."""

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid: int
    num_skipped: int

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


def evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50) -> RankResult:
    """Evaluate a (num_query, num_gallery) distance matrix; ties keep gallery order."""
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    max_rank = min(max_rank, distmat.shape[1])
    cmc_sum = np.zeros(max_rank)
    aps, inps, skipped = [], [], 0
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i])) & (g_pids[order] != -1)
        matches = (g_pids[order] == q_pids[i])[keep]
        if not matches.any():
            skipped += 1
            continue
        hits = np.flatnonzero(matches)
        first = hits[0]
        if first < max_rank:
            cmc_sum[first:] += 1
        precision_at_hits = np.arange(1, len(hits) + 1) / (hits + 1)
        aps.append(precision_at_hits.mean())
        inps.append(len(hits) / (hits[-1] + 1))
    valid = len(aps)
    if valid == 0:
        raise ValueError("no query has a true match in the gallery")
    return RankResult(cmc_sum / valid, float(np.mean(aps)), float(np.mean(inps)), valid, skipped)
