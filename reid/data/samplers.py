"""Identity-balanced P x K batches."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class PKBatchSampler(Sampler[list[int]]):
    """Yield batches of P identities x K images each, covering every image once per epoch.

    Each identity's images are shuffled and cut into groups of K (an identity with fewer
    than K images is sampled with replacement); batches draw P identities that still have
    groups left. Seeded by (seed, epoch): call `set_epoch` before each epoch.
    """

    def __init__(self, pids: Sequence[int], p: int, k: int, seed: int = 0) -> None:
        if p < 2:
            raise ValueError(f"P (identities per batch) must be at least 2, got {p}")
        if k < 1:
            raise ValueError(f"K (images per identity) must be at least 1, got {k}")
        self.index_by_pid: dict[int, list[int]] = defaultdict(list)
        for index, pid in enumerate(pids):
            self.index_by_pid[int(pid)].append(index)
        if len(self.index_by_pid) < p:
            raise ValueError(f"P = {p} identities per batch but the data has only {len(self.index_by_pid)}")
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _groups(self, rng: np.random.Generator) -> dict[int, list[list[int]]]:
        groups = {}
        for pid, indices in self.index_by_pid.items():
            if len(indices) < self.k:
                chosen = rng.choice(indices, size=self.k, replace=True).tolist()
            else:
                chosen = rng.permutation(indices).tolist()
                chosen += chosen[: (-len(chosen)) % self.k]  # top up to a multiple of K
            groups[pid] = [chosen[i : i + self.k] for i in range(0, len(chosen) - self.k + 1, self.k)]
        return groups

    def batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        groups = self._groups(rng)
        batches = []
        available = [pid for pid in groups if groups[pid]]
        while len(available) >= self.p:
            chosen = rng.choice(len(available), size=self.p, replace=False)
            batch = []
            for i in chosen:
                batch.extend(groups[available[i]].pop())
            batches.append(batch)
            available = [pid for pid in available if groups[pid]]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())
