"""Torch datasets and loaders over records."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .datasets.base import Record
from .image_io import read_image
from .samplers import PKBatchSampler


class ImageDataset(Dataset):
    """Records -> (image tensor, pid, camid, index)."""

    def __init__(self, records: Sequence[Record], transform: Callable) -> None:
        self.records, self.transform = list(records), transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        record = self.records[index]
        return self.transform(read_image(record.path)), record.pid, record.camid, index


class SeededImageDataset(ImageDataset):
    """Keys are (index, seed): the random transform of each sample runs under its own seed.

    The augmentation of a sample then depends on (run seed, epoch, step, rank, position)
    only, not on the worker that loads it nor on what that worker loaded before, so a
    run resumed mid-epoch, or with another number of workers, sees the same images.
    The caller's torch RNG state is restored afterwards (matters with 0 workers).
    """

    def __getitem__(self, key):
        index, seed = key
        record = self.records[index]
        image = read_image(record.path)
        state = torch.get_rng_state()
        torch.manual_seed(int(seed))
        try:
            tensor = self.transform(image)
        finally:
            torch.set_rng_state(state)
        return tensor, record.pid, record.camid, index


class SeededBatches(Sampler[list[tuple[int, int]]]):
    """Wrap a `PKBatchSampler`: each index comes with a seed drawn from
    SeedSequence([seed, epoch, step, rank]), one per position in the batch."""

    def __init__(self, sampler: PKBatchSampler) -> None:
        self.sampler = sampler

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def set_start(self, step: int) -> None:
        self.sampler.set_start(step)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        s = self.sampler
        for step, batch in enumerate(iter(s), start=s.start):
            seeds = np.random.SeedSequence([s.seed, s.epoch, step, s.rank]).generate_state(len(batch))
            yield list(zip(batch, seeds.tolist()))

    def __len__(self) -> int:
        return len(self.sampler)


def _seed_worker(worker_id: int) -> None:  # torch seeds its own RNG per worker from the loader's generator
    import random

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def train_loader(
    records: Sequence[Record],
    transform: Callable,
    p: int,
    k: int,
    seed: int,
    workers: int,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> DataLoader:
    """A loader of P x K batches (this process's share when distributed).

    `loader.batch_sampler.set_epoch(e)` reshuffles; `set_start(step)` resumes mid-epoch;
    `loader.batch_sampler.sampler` is the `PKBatchSampler`.
    """
    sampler = SeededBatches(PKBatchSampler([r.pid for r in records], p, k, seed=seed, rank=rank, world_size=world_size))
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        SeededImageDataset(records, transform),
        batch_sampler=sampler,
        num_workers=workers,
        worker_init_fn=_seed_worker,
        generator=generator,
        persistent_workers=False,
        pin_memory=pin_memory,
    )


def test_loader(records: Sequence[Record], transform: Callable, batch_size: int, workers: int) -> DataLoader:
    return DataLoader(ImageDataset(records, transform), batch_size=batch_size, shuffle=False, num_workers=workers)
