"""Torch datasets and loaders over records."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from reid.errors import DataError, ReidError

from .datasets.base import Record
from .image_io import read_image
from .samplers import PKBatchSampler

BAD_IMAGE_HINT = "; fix or remove it, or use --skip-bad (skip bad images) or --verify-images (find them all up front)"


class OneLineErrorLoader(DataLoader):
    """A DataLoader whose worker errors stay one line.

    A DataError raised in a worker process comes back as a copy whose message is the
    worker's whole traceback; this re-raises it as the original one-line message.
    """

    def __iter__(self):
        iterator = super().__iter__()
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except ReidError as exc:
                raise type(exc)(worker_message(str(exc))) from None
            yield batch


def worker_message(text: str) -> str:
    """The original message of an exception re-raised from a DataLoader worker (else `text`)."""
    if not text.startswith("Caught ") or "Traceback" not in text:
        return text
    last = [line for line in text.strip().splitlines() if line.strip()][-1]
    return last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].endswith("Error") else last


def _read(records: Sequence[Record], index: int, skip_bad: bool) -> tuple[np.ndarray, Record]:
    """Decode record `index`; with `skip_bad`, a bad image is replaced by the next good one of the same id."""
    record = records[index]
    try:
        return read_image(record.path), record
    except DataError as exc:
        if not skip_bad:
            raise DataError(f"{exc}{BAD_IMAGE_HINT}") from None
        first = exc
    same = [r for r in records if r.pid == record.pid and r.path != record.path]
    for other in same:
        try:
            image = read_image(other.path)
        except DataError:
            continue
        warnings.warn(f"{first}; using {Path(other.path).name} of the same identity instead (--skip-bad)", stacklevel=2)
        return image, other
    raise DataError(f"{first} and no other image of identity {record.pid} is readable") from None


class ImageDataset(Dataset):
    """Records -> (image tensor, pid, camid, index)."""

    def __init__(self, records: Sequence[Record], transform: Callable, skip_bad: bool = False) -> None:
        self.records, self.transform, self.skip_bad = list(records), transform, skip_bad

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        image, record = _read(self.records, index, self.skip_bad)
        return self.transform(image), record.pid, record.camid, index


class SeededImageDataset(ImageDataset):
    """Keys are (index, seed): the random transform of each sample runs under its own seed.

    The augmentation of a sample then depends on (run seed, epoch, step, rank, position)
    only, not on the worker that loads it nor on what that worker loaded before, so a
    run resumed mid-epoch, or with another number of workers, sees the same images.
    The caller's torch RNG state is restored afterwards (matters with 0 workers).
    """

    def __getitem__(self, key):
        index, seed = key
        image, record = _read(self.records, index, self.skip_bad)
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
    skip_bad: bool = False,
) -> DataLoader:
    """A loader of P x K batches (this process's share when distributed).

    `loader.batch_sampler.set_epoch(e)` reshuffles; `set_start(step)` resumes mid-epoch;
    `loader.batch_sampler.sampler` is the `PKBatchSampler`. `skip_bad`: an image that
    fails to decode is replaced by another image of the same identity instead of failing.
    """
    sampler = SeededBatches(PKBatchSampler([r.pid for r in records], p, k, seed=seed, rank=rank, world_size=world_size))
    generator = torch.Generator().manual_seed(seed)
    return OneLineErrorLoader(
        SeededImageDataset(records, transform, skip_bad),
        batch_sampler=sampler,
        num_workers=workers,
        worker_init_fn=_seed_worker,
        generator=generator,
        persistent_workers=False,
        pin_memory=pin_memory,
    )


def test_loader(records: Sequence[Record], transform: Callable, batch_size: int, workers: int) -> DataLoader:
    """Records in order (features keep their row order, so bad images fail, never shift rows)."""
    return OneLineErrorLoader(
        ImageDataset(records, transform), batch_size=batch_size, shuffle=False, num_workers=workers
    )
