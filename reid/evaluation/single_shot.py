"""CUHK03-style single-gallery-shot CMC: one randomly drawn gallery image per identity.

For each query and each of `num_repeats` draws, one valid gallery image is drawn
uniformly for every identity (junk and same-camera images of the query's identity
are not drawable); the query's rank is the number of drawn images of other
identities that come before the drawn true match (distance, then gallery index).
The query's CMC is the hit rate at each rank averaged over the draws. This is the
classic CUHK03 protocol (as in torchreid's `eval_cuhk03`); AP still uses the full
gallery.

The draws are fixed by (seed, query index): query i uses
``np.random.default_rng([seed, i]).random((num_repeats, num_groups))``, whose
column c belongs to the c-th identity of ``np.unique(g_pids)``; the identity's
valid images are taken in gallery order and image ``floor(u * count)`` is drawn.
So results do not depend on chunking.
"""

from __future__ import annotations

import numpy as np


class GalleryGroups:
    """Gallery indices grouped by identity: sorted unique pids and each group's span in `order`."""

    def __init__(self, g_pids: np.ndarray) -> None:
        self.order = np.argsort(g_pids, kind="stable")
        self.pids, self.starts, self.counts = np.unique(g_pids[self.order], return_index=True, return_counts=True)
        self.ends = self.starts + self.counts

    def find_many(self, pids: np.ndarray) -> np.ndarray:
        """Index of each pid among the groups, or -1 where no gallery image has it."""
        i = np.searchsorted(self.pids, pids)
        ok = i < len(self.pids)
        ok[ok] = self.pids[i[ok]] == pids[ok]
        return np.where(ok, i, -1).astype(np.int64)

    def members(self, group: int) -> np.ndarray:
        """Gallery indices of one identity, in gallery order."""
        return self.order[self.starts[group] : self.ends[group]]


def sampled_first_ranks(
    row: np.ndarray, group: int, groups: GalleryGroups, num_repeats: int, seed: int, query_index: int
) -> np.ndarray:
    """(num_repeats,) 0-based rank of the drawn true match among the drawn images.

    row: (G,) distances with NaN for images that cannot be drawn; `group` is the
    query's identity group, which must hold at least one valid image.
    """
    u = np.random.default_rng([seed, query_index]).random((num_repeats, len(groups.pids)))
    valid_sorted = ~np.isnan(row[groups.order])
    csum = np.concatenate([[0], np.cumsum(valid_sorted)])
    base = csum[groups.starts]
    count = csum[groups.ends] - base
    k = np.floor(u * count).astype(np.int64)
    # position in `order` of the (k+1)-th valid member of each group
    pos = np.searchsorted(csum, base + k + 1, side="left") - 1
    pos = np.minimum(pos, len(groups.order) - 1)
    drawn = groups.order[pos]
    d = row[drawn]
    dq, iq = d[:, group : group + 1], drawn[:, group : group + 1]
    before = (d < dq) | ((d == dq) & (drawn < iq))
    before &= count > 0
    return np.count_nonzero(before, axis=1)
