"""Torch datasets and loaders over records."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

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


def _seed_worker(worker_id: int) -> None:  # torch seeds its own RNG per worker from the loader's generator
    import random

    import numpy as np

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def train_loader(records: Sequence[Record], transform: Callable, p: int, k: int, seed: int, workers: int) -> DataLoader:
    """A loader of P x K batches; `loader.batch_sampler.set_epoch(e)` reshuffles."""
    sampler = PKBatchSampler([r.pid for r in records], p, k, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        ImageDataset(records, transform),
        batch_sampler=sampler,
        num_workers=workers,
        worker_init_fn=_seed_worker,
        generator=generator,
        persistent_workers=False,
    )


def test_loader(records: Sequence[Record], transform: Callable, batch_size: int, workers: int) -> DataLoader:
    return DataLoader(ImageDataset(records, transform), batch_size=batch_size, shuffle=False, num_workers=workers)
