"""Records and the three-split container every benchmark loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Record(NamedTuple):
    """One image: path on disk, person id and 0-based camera id.

    In the train split pids are relabelled 0..N-1; in query/gallery they are the
    original ids (0 = distractor in Market-1501). Junk images (pid -1) never appear.
    """

    path: str
    pid: int
    camid: int


@dataclass
class ReidDataset:
    """A re-ID benchmark: train (relabelled pids), query and gallery records."""

    name: str
    train: list[Record]
    query: list[Record]
    gallery: list[Record]
    root: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def num_train_pids(self) -> int:
        return len({r.pid for r in self.train})

    @property
    def num_cameras(self) -> int:
        return len({r.camid for r in self.train + self.query + self.gallery})

    def split(self, name: str) -> list[Record]:
        if name not in ("train", "query", "gallery"):
            raise ValueError(f"unknown split {name!r}: use train, query or gallery")
        return getattr(self, name)


def relabel(records: list[Record]) -> list[Record]:
    """Map the pids of a split onto 0..N-1 in sorted order of the original ids."""
    mapping = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    return [Record(r.path, mapping[r.pid], r.camid) for r in records]
