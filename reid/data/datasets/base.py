"""Records, the three-split container every loader returns, and the bookkeeping
that turns odd files into counted warnings (or one-line errors) at load time."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from reid.errors import DataError

from .integrity import drop_bad_images

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# files every release or OS leaves in image folders; never worth a warning
CLUTTER = frozenset({"thumbs.db", ".ds_store", "desktop.ini"})
SPLITS = ("train", "query", "gallery")
MAX_ID = 2**31 - 1  # person and camera ids are stored as int64 and indexed: refuse absurd ones at parse time


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
    """A re-ID benchmark: train (relabelled pids), query and gallery records.

    `warnings` holds one line per problem the loader skipped past; `counts` the
    numbers behind them (junk, unmatched, other_files, bad_images,
    query_ids_without_gallery, queries_without_cross_camera_match).
    """

    name: str
    train: list[Record]
    query: list[Record]
    gallery: list[Record]
    root: str = ""
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def num_train_pids(self) -> int:
        return len({r.pid for r in self.train})

    @property
    def num_cameras(self) -> int:
        return len({r.camid for r in self.train + self.query + self.gallery})

    def split(self, name: str) -> list[Record]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}: use train, query or gallery")
        return getattr(self, name)


def relabel(records: list[Record]) -> list[Record]:
    """Map the pids of a split onto 0..N-1 in sorted order of the original ids."""
    mapping = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    return [Record(r.path, mapping[r.pid], r.camid) for r in records]


@dataclass(frozen=True)
class LoadOptions:
    """strict: unmatched file names are errors; skip_bad: unreadable images are skipped
    (and counted) instead of being errors; verify_images: decode every image at load."""

    strict: bool = False
    skip_bad: bool = False
    verify_images: bool = False


def _examples(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


class Issues:
    """Collects what a loader skips; raises DataError instead where options say so.

    Nothing is logged here: callers show `dataset.warnings` (the CLI prints them once).
    """

    def __init__(self, options: LoadOptions) -> None:
        self.options = options
        self.warnings: list[str] = []
        self.counts: Counter[str] = Counter()

    def warn(self, message: str, key: str, n: int) -> None:
        self.counts[key] += n
        self.warnings.append(message)

    def unmatched(self, where: str | Path, names: list[str], expected: str) -> None:
        """Files that do not follow the naming scheme: warned and counted, or an error if strict."""
        if not names:
            return
        if self.options.strict:
            raise DataError(
                f"{where}: {len(names)} file(s) not named like {expected}, first {names[0]} "
                "(strict mode; without it they are skipped with a warning)"
            )
        self.warn(
            f"{where}: skipped {len(names)} file(s) not named like {expected}: {_examples(names)}",
            "unmatched",
            len(names),
        )


def list_folder(folder: Path, issues: Issues) -> list[os.DirEntry]:
    """Image files of `folder`, sorted by name; other files are counted in `other_files`."""
    images = []
    for entry in os.scandir(folder):
        try:
            is_file = entry.is_file() or entry.is_symlink()  # a broken link is reported as a bad image
        except OSError:  # a symlink loop: listed, then named by the image check
            is_file = True
        if not is_file or (entry.is_symlink() and os.path.isdir(entry.path)):
            continue
        suffix = os.path.splitext(entry.name)[1].lower()
        if suffix in IMAGE_EXTENSIONS:
            images.append(entry)
        elif entry.name.lower() not in CLUTTER:
            issues.counts["other_files"] += 1
    return sorted(images, key=lambda e: e.name)


def require_split_folder(folder: Path, split: str, layout: str) -> None:
    if not folder.is_dir():
        raise DataError(f"{folder}: {split} folder not found (expected the {layout} layout)")


def finish(
    name: str,
    root: str | Path,
    splits: dict[str, list[Record]],
    issues: Issues,
    meta: dict[str, object] | None = None,
    optional_train: bool = False,
    cameras: bool = True,
) -> ReidDataset:
    """Drop bad images, check no split is empty, relabel train, count query ids
    missing from the gallery, and build the ReidDataset. `cameras=False` (data sets
    without cameras) skips the same-camera check, which only the re-ID protocol needs."""
    splits = drop_bad_images(splits, issues)
    for split, records in splits.items():
        if not records and not (split == "train" and optional_train):
            raise DataError(f"{root}: the {split} split has no usable images")
    query, gallery = splits["query"], splits["gallery"]
    _count_unmatched_queries(query, gallery, issues, cameras)
    _count_query_images_in_gallery(query, gallery, issues)
    return ReidDataset(
        name=name,
        train=relabel(splits["train"]),
        query=query,
        gallery=gallery,
        root=str(root),
        warnings=issues.warnings,
        counts=dict(issues.counts),
        meta=dict(meta or {}),
    )


def _count_query_images_in_gallery(query: list[Record], gallery: list[Record], issues: Issues) -> None:
    """Warn about the same file listed as a query and, under another camera, in the gallery:
    it then matches itself across cameras and inflates rank-1 (a CSV mistake)."""
    gallery_cams: dict[str, set[int]] = {}
    for r in gallery:
        gallery_cams.setdefault(os.path.normpath(r.path), set()).add(r.camid)
    doubled = [r for r in query if gallery_cams.get(os.path.normpath(r.path), set()) - {r.camid}]
    if doubled:
        issues.warn(
            f"{len(doubled)} image(s) are listed as a query and, under another camera, in the gallery, so they "
            f"match themselves and inflate the scores: {_examples([r.path for r in doubled])}",
            "query_images_in_gallery",
            len(doubled),
        )


def _count_unmatched_queries(query: list[Record], gallery: list[Record], issues: Issues, cameras: bool = True) -> None:
    """Warn about query ids absent from the gallery and queries with no cross-camera match."""
    gallery_cams: dict[int, set[int]] = {}
    for r in gallery:
        gallery_cams.setdefault(r.pid, set()).add(r.camid)
    missing = sorted({r.pid for r in query} - set(gallery_cams))
    if missing:
        issues.warn(
            f"{len(missing)} query identities have no gallery image, so their queries cannot be "
            f"evaluated: pid {_examples([str(p) for p in missing])}",
            "query_ids_without_gallery",
            len(missing),
        )
    if not cameras:
        return
    lonely = [r for r in query if r.pid in gallery_cams and gallery_cams[r.pid] <= {r.camid}]
    if lonely:
        issues.warn(
            f"{len(lonely)} query images have gallery matches only from their own camera and will be "
            f"skipped in evaluation: {_examples([Path(r.path).name for r in lonely])}",
            "queries_without_cross_camera_match",
            len(lonely),
        )
