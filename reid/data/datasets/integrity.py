"""Finding missing, empty and undecodable images before a DataLoader worker does."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from reid.data.image_io import image_problem
from reid.errors import DataError

if TYPE_CHECKING:  # annotations only: base imports this module
    from .base import Issues, Record, ReidDataset


def cheap_problem(path: str) -> str | None:
    """Missing or zero-byte file, broken symlink or non-UTF-8 name (one stat call), else None."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8 (rename the file)"
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return "broken symbolic link (its target does not exist)" if os.path.islink(path) else "image file not found"
    except OSError as err:
        return f"cannot read image file ({err.strerror or err})"
    return "image file is empty (0 bytes)" if size == 0 else None


def find_bad_images(paths: list[str], verify: bool, workers: int = 4) -> dict[str, str]:
    """path -> problem for every unusable image. Always checks existence and size;
    with `verify`, decodes every image (threads: OpenCV releases the GIL)."""
    bad = {p: why for p in paths if (why := cheap_problem(p)) is not None}
    if verify:
        rest = [p for p in paths if p not in bad]
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for path, why in zip(rest, pool.map(image_problem, rest, chunksize=64)):
                if why is not None:
                    bad[path] = why
    return bad


def drop_bad_images(splits: dict[str, list[Record]], issues: Issues) -> dict[str, list[Record]]:
    """Remove unusable images when `skip_bad` (counted as bad_images), else raise one DataError."""
    paths = list(dict.fromkeys(r.path for records in splits.values() for r in records))
    bad = find_bad_images(paths, issues.options.verify_images)
    if not bad:
        return splits
    first, why = next(iter(bad.items()))
    if not issues.options.skip_bad:
        more = f" (and {len(bad) - 1} more bad images)" if len(bad) > 1 else ""
        raise DataError(f"{first}: {why}{more}; fix or remove it, or use --skip-bad to skip bad images")
    issues.warn(f"skipped {len(bad)} unusable image(s), e.g. {first}: {why}", "bad_images", len(bad))
    return {split: [r for r in records if r.path not in bad] for split, records in splits.items()}


def verify_splits(dataset: ReidDataset, splits: tuple[str, ...] = ("query", "gallery"), skip_bad: bool = False) -> None:
    """Decode every image of `splits` now (in place): a bad query/gallery image is named before
    training starts, not at the evaluation after the last epoch. With `skip_bad` it is dropped and
    counted (bad_images) like at load time."""
    paths = list(dict.fromkeys(r.path for split in splits for r in dataset.split(split)))
    bad = find_bad_images(paths, verify=True)
    if not bad:
        return
    first, why = next(iter(bad.items()))
    if not skip_bad:
        more = f" (and {len(bad) - 1} more bad images)" if len(bad) > 1 else ""
        raise DataError(f"{first}: {why}{more}; fix or remove it, or use --skip-bad to skip bad images")
    for split in splits:
        setattr(dataset, split, [r for r in dataset.split(split) if r.path not in bad])
        if not dataset.split(split):
            raise DataError(f"{dataset.root}: the {split} split has no usable images")
    dataset.warnings.append(f"skipped {len(bad)} unusable {'/'.join(splits)} image(s), e.g. {first}: {why}")
    dataset.counts["bad_images"] = dataset.counts.get("bad_images", 0) + len(bad)
