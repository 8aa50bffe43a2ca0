"""Identity-balanced P x K batches, single-process or split across distributed processes."""

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

    Distributed (`world_size` > 1): every process builds the same global batches of
    P * world_size identities and keeps identities [rank * P, (rank + 1) * P) of each, so
    a process gets whole identities and two processes never share a batch element.
    `set_start(step)` skips the first `step` batches of the epoch (mid-epoch resume).
    """

    def __init__(self, pids: Sequence[int], p: int, k: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if p < 2:
            raise ValueError(f"P (identities per batch) must be at least 2, got {p}")
        if k < 1:
            raise ValueError(f"K (images per identity) must be at least 1, got {k}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        self.index_by_pid: dict[int, list[int]] = defaultdict(list)
        for index, pid in enumerate(pids):
            self.index_by_pid[int(pid)].append(index)
        if len(self.index_by_pid) < p * world_size:
            need = f"P = {p}" if world_size == 1 else f"P x processes = {p} x {world_size}"
            raise ValueError(f"{need} identities per batch but the data has only {len(self.index_by_pid)}")
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0
        self.rank, self.world_size, self.start = rank, world_size, 0
        self._cache: tuple[tuple[int, int], list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_start(self, step: int) -> None:
        """Begin the next iteration at batch `step` of the epoch (0: from the start)."""
        self.start = step

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "start": self.start, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.start, self.seed = int(state["epoch"]), int(state["start"]), int(state["seed"])

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

    def global_batches(self) -> list[list[list[int]]]:
        """All processes' batches of this epoch: [step][rank] -> indices (P * K each)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        groups = self._groups(rng)
        batches = []
        available = [pid for pid in groups if groups[pid]]
        width = self.p * self.world_size
        while len(available) >= width:
            chosen = rng.choice(len(available), size=width, replace=False)
            parts = []
            for r in range(self.world_size):
                batch = []
                for i in chosen[r * self.p : (r + 1) * self.p]:
                    batch.extend(groups[available[i]].pop())
                parts.append(batch)
            batches.append(parts)
            available = [pid for pid in available if groups[pid]]
        return batches

    def batches(self) -> list[list[int]]:
        """This process's batches of the whole epoch (ignores `set_start`)."""
        key = (self.seed, self.epoch)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, [parts[self.rank] for parts in self.global_batches()])
        return self._cache[1]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches()[self.start :])

    def __len__(self) -> int:
        return max(0, len(self.batches()) - self.start)
