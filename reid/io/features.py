"""The HDF5 feature store: one file per split (features, pids, camids, paths + attributes)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from reid.errors import DataError

FORMAT_VERSION = 1


@dataclass
class FeatureSet:
    """Features (N, D) float32 with their labels; `attrs` records how they were made."""

    features: np.ndarray
    pids: np.ndarray
    camids: np.ndarray
    paths: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.features)


def write_features(path: str | Path, fs: FeatureSet) -> None:
    """Write atomically: a temp file beside `path`, renamed into place when complete."""
    path = Path(path)
    n = len(fs.features)
    if not (len(fs.pids) == len(fs.camids) == len(fs.paths) == n):
        raise ValueError("features, pids, camids and paths must have the same length")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with h5py.File(tmp, "w") as h5:
        h5.create_dataset("features", data=np.asarray(fs.features, np.float32))
        h5.create_dataset("pids", data=np.asarray(fs.pids, np.int64))
        h5.create_dataset("camids", data=np.asarray(fs.camids, np.int64))
        h5.create_dataset("paths", data=np.array(fs.paths, dtype=h5py.string_dtype()))
        h5.attrs["format_version"] = FORMAT_VERSION
        for key, value in fs.attrs.items():
            h5.attrs[key] = value if isinstance(value, (str, int, float, bool)) else json.dumps(value)
    os.replace(tmp, path)


def read_features(path: str | Path) -> FeatureSet:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: feature file not found")
    try:
        with h5py.File(path, "r") as h5:
            missing = [k for k in ("features", "pids", "camids", "paths") if k not in h5]
            if missing:
                raise DataError(f"{path}: not a reid feature file (missing {', '.join(missing)})")
            return FeatureSet(
                features=h5["features"][()].astype(np.float32, copy=False),
                pids=h5["pids"][()],
                camids=h5["camids"][()],
                paths=[p.decode() if isinstance(p, bytes) else str(p) for p in h5["paths"][()]],
                attrs=dict(h5.attrs),
            )
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None
