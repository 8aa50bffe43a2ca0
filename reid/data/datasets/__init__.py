"""Benchmark loaders. `build_dataset(name, root)` is the one entry point."""

from __future__ import annotations

from pathlib import Path

from reid.errors import DataError

from .base import Record, ReidDataset, relabel
from .market1501 import load_market_layout

# name -> folder name under the data root
FOLDERS = {"market1501": "Market-1501", "dukemtmc": "DukeMTMC-reID", "synthetic": "synthetic-market"}


def build_dataset(name: str, root: str | Path) -> ReidDataset:
    """Load benchmark `name` from `root/<its folder>` (or `root` itself if it is the folder)."""
    if name not in FOLDERS:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(sorted(FOLDERS))}")
    root = Path(root)
    folder = root / FOLDERS[name]
    if not folder.is_dir() and (root / "bounding_box_train").is_dir():
        folder = root
    return load_market_layout(folder, name)


__all__ = ["FOLDERS", "Record", "ReidDataset", "build_dataset", "relabel"]
