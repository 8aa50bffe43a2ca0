"""Market-1501 and DukeMTMC-reID: `<pid>_c<cam>...jpg` in three folders."""

from __future__ import annotations

import re
from pathlib import Path

from reid.errors import DataError

from .base import Record, ReidDataset, relabel

_PATTERN = re.compile(r"^(-?\d+)_c(\d+)")
SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


def parse_folder(folder: Path) -> list[Record]:
    """Read every `<pid>_c<cam>*.jpg` in `folder`; junk (pid -1) is dropped, pid 0 kept."""
    if not folder.is_dir():
        raise DataError(f"{folder}: split folder not found")
    records = []
    for path in sorted(folder.glob("*.jpg")):
        match = _PATTERN.match(path.name)
        if match is None:
            continue
        pid, cam = int(match.group(1)), int(match.group(2))
        if pid == -1:
            continue
        records.append(Record(str(path), pid, cam - 1))
    if not records:
        raise DataError(f"{folder}: no images named like 0002_c1s1_000451_03.jpg")
    return records


def load_market_layout(root: str | Path, name: str) -> ReidDataset:
    """Load a folder laid out like Market-1501 (also DukeMTMC-reID)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    train = relabel(parse_folder(root / SPLIT_FOLDERS["train"]))
    query = parse_folder(root / SPLIT_FOLDERS["query"])
    gallery = parse_folder(root / SPLIT_FOLDERS["gallery"])
    return ReidDataset(name=name, train=train, query=query, gallery=gallery, root=str(root))
