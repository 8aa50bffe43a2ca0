"""Feature extraction jobs behind `reid extract`: which images, what the file records, how it is written.

    records      folder_records (any image folder, Market-style names parsed), usable_records (--skip-bad)
    file header  feature_attrs: model, config hash, weight fingerprint, test-time options, preprocessing
    writing      extract_to_h5: resumable chunks through reid.io.features.PartialFeatureWriter;
                 extract_mot_to_npy: a DeepSORT detection file of a MOT sequence

Messages for the user go through a `log` callable (the CLI passes click.echo), so this layer never prints.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from reid.config import Config
from reid.data.datasets.base import Record
from reid.data.datasets.integrity import find_bad_images
from reid.data.datasets.market1501 import parse_name
from reid.data.transforms import Preprocess
from reid.errors import DataError
from reid.io.fingerprint import stable_hash
from reid.test_time import TestConfig

from .extractor import FeatureExtractor

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}

Log = Callable[[str], None]


def folder_records(folder: Path) -> list[Record]:
    """Every image under `folder`; pid/camid parsed from Market-style names, else -1."""
    records = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        parsed = parse_name(path.name)
        pid, cam = (parsed[0], parsed[1] - 1) if parsed else (-1, -1)
        records.append(Record(str(path), pid, cam))
    return records


def usable_records(records: list[Record], skip_bad: bool, verify: bool, warn: Log | None = None) -> list[Record]:
    """Drop (and count) unusable images with `skip_bad`, else name the first one; `verify` decodes them all.

    The one warning line of a skip goes to `warn` (the CLI: stderr), else to `warnings.warn`.
    """
    bad = find_bad_images([r.path for r in records], verify)
    if not bad:
        return records
    first, why = next(iter(bad.items()))
    if not skip_bad:
        raise DataError(f"{first}: {why}; fix or remove it, or use --skip-bad to skip bad images")
    message = f"skipped {len(bad)} unusable image(s), e.g. {first}: {why}"
    if warn is None:
        warnings.warn(message, stacklevel=2)
    else:
        warn(f"warning: {message}")
    kept = [r for r in records if r.path not in bad]
    if not kept:
        raise DataError("no usable images left after --skip-bad")
    return kept


def fingerprint(weights: str, pre: dict, options: dict, half: bool, paths: list[str]) -> str:
    """What makes a feature file's rows what they are; equal fingerprints may resume each other."""
    head = {"weights": weights, "pre": pre, "options": options, "half": half}
    return stable_hash([head, *(path + "\0" for path in paths)])


def feature_attrs(
    checkpoint: str,
    config: Config,
    weights: str,
    options: TestConfig,
    pre: Preprocess,
    half: bool,
    backend: str,
) -> dict[str, Any]:
    """The HDF5 attributes that say which model, config and test-time options made the features."""
    return {
        "model": str(checkpoint),
        "backbone": config.model.backbone,
        "config_hash": config.hash(),
        "config": config.to_dict(),
        "weights": weights,
        "tta": options.describe(),
        "test_time_options": options.feature_dict(),
        "normalized": True,
        "preprocess": pre.to_dict(),
        "half": half,
        "backend": backend,
    }


def extract_to_h5(
    extractor: FeatureExtractor,
    records: list[Record],
    attrs: dict[str, Any],
    out: str | Path,
    chunk: int,
    progress: bool = True,
    log: Log = print,
) -> int:
    """Features of `records` into `out`, `chunk` rows at a time, resuming a matching OUT.partial; rows written."""
    from tqdm import tqdm

    from reid.io.features import PartialFeatureWriter

    paths = [r.path for r in records]
    key = fingerprint(attrs["weights"], attrs["preprocess"], attrs["test_time_options"], attrs["half"], paths)
    if attrs.get("quantize", "none") != "none":  # int8 rows are not float32 rows: never resume across
        key += f"-{attrs['quantize']}"
    pids, camids = [r.pid for r in records], [r.camid for r in records]
    with PartialFeatureWriter(out, pids, camids, paths, extractor.feature_dim, attrs, key) as writer:
        if writer.resumed_from:
            log(f"resuming {writer.partial} at {writer.resumed_from} of {len(paths)} images")
        name = Path(out).name
        with tqdm(total=len(paths), initial=writer.rows_done, desc=name, unit="img", disable=not progress) as bar:
            while writer.rows_done < len(paths):
                batch = paths[writer.rows_done : writer.rows_done + chunk]
                writer.write(extractor(batch))
                bar.update(len(batch))
        writer.finish()
    return len(paths)


def extract_mot_to_npy(
    extractor: FeatureExtractor, sequence: str | Path, detections: str | Path | None, out: str | Path, progress: bool
) -> np.ndarray:
    """The DeepSORT detection array (box, score, feature per row) of a MOT sequence, saved atomically to `out`."""
    from reid.io.mot import deepsort_detections, save_npy_atomic

    array = deepsort_detections(extractor, sequence, detections, progress=progress)
    save_npy_atomic(array, out)
    return array
