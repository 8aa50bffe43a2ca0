"""Market-1501 layout: `<pid>_c<cam>...` images in bounding_box_train, query,
bounding_box_test. DukeMTMC-reID, CUHK03-NP (per variant) and the synthetic demo
set share it:

    Market-1501  0002_c1s1_000451_03.jpg   (-1_... junk, 0000_... distractors)
    DukeMTMC     0001_c2_f0046182.jpg
    CUHK03-NP    0001_c1_1.png
"""

from __future__ import annotations

import re
from pathlib import Path

from reid.errors import DataError

from .base import (
    MAX_ID,
    Issues,
    LoadOptions,
    Record,
    ReidDataset,
    finish,
    list_folder,
    require_split_folder,
)

_PATTERN = re.compile(r"^(-?\d+)_c([1-9]\d*)")
SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
NAMING = "<pid>_c<camera from 1>* as in 0002_c1s1_000451_03.jpg"


def parse_name(name: str) -> tuple[int, int] | None:
    """(pid, camera as written, from 1) of a Market-style file name, or None."""
    match = _PATTERN.match(name)
    if match is None or len(match.group(1)) > 10 or len(match.group(2)) > 10:
        return None
    pid, cam = int(match.group(1)), int(match.group(2))
    return (pid, cam) if pid <= MAX_ID and cam <= MAX_ID else None


def parse_folder(folder: Path, issues: Issues | None = None, split: str = "split") -> list[Record]:
    """Records of every `<pid>_c<cam>*` image in `folder`; junk (pid -1) dropped, pid 0 kept.

    Names that do not match are warned about and counted (an error when strict).
    """
    issues = issues or Issues(LoadOptions())
    require_split_folder(folder, split, "Market-1501")
    records, unmatched, junk = [], [], 0
    for entry in list_folder(folder, issues):
        parsed = parse_name(entry.name)
        if parsed is None:
            unmatched.append(entry.name)
            continue
        pid, cam = parsed
        if pid == -1:
            junk += 1
            continue
        if pid < -1:
            unmatched.append(entry.name)
            continue
        records.append(Record(str(folder / entry.name), pid, cam - 1))
    issues.unmatched(folder, unmatched, NAMING)
    issues.counts["junk"] += junk
    if not records:
        raise DataError(f"{folder}: no images named like {NAMING}")
    return records


def load_market_layout(root: str | Path, name: str, options: LoadOptions | None = None) -> ReidDataset:
    """Load a folder laid out like Market-1501 (also DukeMTMC-reID, CUHK03-NP, synthetic)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    issues = Issues(options or LoadOptions())
    splits = {split: parse_folder(root / folder, issues, split) for split, folder in SPLIT_FOLDERS.items()}
    return finish(name, root, splits, issues)
