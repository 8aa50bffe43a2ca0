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


def read_features(path: str | Path) -> FeatureSet:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: feature file not found")
    try:
        with h5py.File(path, "r") as h5:
            missing = [k for k in ("features", "pids", "camids", "paths") if k not in h5]
            if missing:
                raise DataError(f"{path}: not a reid feature file (missing {', '.join(missing)})")
            fs = FeatureSet(
                features=h5["features"][()].astype(np.float32, copy=False),
                pids=h5["pids"][()],
                camids=h5["camids"][()],
                paths=[p.decode() if isinstance(p, bytes) else str(p) for p in h5["paths"][()]],
                attrs=dict(h5.attrs),
            )
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None
    _check_rows(fs, path)
    return fs


def _check_rows(fs: FeatureSet, path: Path) -> None:
    """Features must be (N >= 1, D) and finite: NaN rows would rank arbitrarily downstream."""
    if fs.features.ndim != 2 or len(fs.features) == 0:
        raise DataError(f"{path}: no features (shape {fs.features.shape}); extract them again")
    if not (len(fs.pids) == len(fs.camids) == len(fs.paths) == len(fs.features)):
        raise DataError(f"{path}: features, pids, camids and paths have different lengths")
    finite = np.isfinite(fs.features).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise DataError(
            f"{path}: {len(bad)} row(s) with NaN or infinite features, first row {int(bad[0])} "
            f"({fs.paths[int(bad[0])]}); extract them again"
        )


def _attr_value(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) else json.dumps(value)


class PartialFeatureWriter:
    """Write a feature file chunk by chunk into `<path>.partial`, resumable after a kill.

    The partial file holds pids, camids and paths from the start, a `fingerprint`
    attribute (a hash of everything that makes the features what they are: model
    weights, preprocessing, test-time options, the image list) and `rows_done`, flushed
    after every chunk. A new writer for the same path resumes at `rows_done` when the
    partial file has the same fingerprint; any other partial file (another model or
    options, or unreadable after a crash) is discarded and the job restarts. `finish()`
    renames the complete file into place, so `path` never names an incomplete file.
    """

    def __init__(
        self,
        path: str | Path,
        pids: Any,
        camids: Any,
        paths: list[str],
        dim: int,
        attrs: dict[str, Any],
        fingerprint: str,
    ) -> None:
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.total, self.dim, self.fingerprint = len(paths), int(dim), fingerprint
        if not (len(pids) == len(camids) == self.total):
            raise ValueError("pids, camids and paths must have the same length")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.resumed_from = self._resumable_rows()
        if self.resumed_from is None:
            self.resumed_from = 0
            self._create(pids, camids, paths, attrs)
        self.h5 = h5py.File(self.partial, "r+")
        self.rows_done = self.resumed_from

    def _resumable_rows(self) -> int | None:
        if not self.partial.exists():
            return None
        try:
            with h5py.File(self.partial, "r") as h5:
                same = h5.attrs.get("fingerprint") == self.fingerprint and h5["features"].shape == (
                    self.total,
                    self.dim,
                )
                return int(h5.attrs["rows_done"]) if same else None
        except (OSError, KeyError):  # cut off mid-write: start again
            return None

    def _create(self, pids: Any, camids: Any, paths: list[str], attrs: dict[str, Any]) -> None:
        with h5py.File(self.partial, "w") as h5:
            h5.create_dataset("features", shape=(self.total, self.dim), dtype=np.float32)
            h5.create_dataset("pids", data=np.asarray(pids, np.int64))
            h5.create_dataset("camids", data=np.asarray(camids, np.int64))
            h5.create_dataset("paths", data=np.array(paths, dtype=h5py.string_dtype()))
            h5.attrs["format_version"] = FORMAT_VERSION
            for key, value in attrs.items():
                h5.attrs[key] = _attr_value(value)
            h5.attrs["fingerprint"] = self.fingerprint
            h5.attrs["rows_done"] = 0

    def write(self, features: np.ndarray) -> None:
        """Append rows (n, D) after `rows_done` and record the progress on disk."""
        n = len(features)
        if self.rows_done + n > self.total or (n and features.shape[1] != self.dim):
            raise ValueError(f"cannot write {features.shape} at row {self.rows_done} of ({self.total}, {self.dim})")
        self.h5["features"][self.rows_done : self.rows_done + n] = np.asarray(features, np.float32)
        self.rows_done += n
        self.h5.attrs["rows_done"] = self.rows_done
        self.h5.flush()

    def finish(self) -> Path:
        """Close and rename into place; every row must have been written."""
        if self.rows_done != self.total:
            raise ValueError(f"finish() after {self.rows_done} of {self.total} rows")
        del self.h5.attrs["rows_done"]
        self.h5.close()
        with open(self.partial, "rb+") as handle:  # on disk before the rename (as reid.io.atomic does)
            os.fsync(handle.fileno())
        os.replace(self.partial, self.path)
        return self.path

    def close(self) -> None:
        """Close without finishing (the partial file stays for a later resume)."""
        if self.h5.id.valid:
            self.h5.close()

    def __enter__(self) -> PartialFeatureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
