"""`reid data check`: count identities, images and cameras per split and compare
them with the published figures, naming every difference.

Identities are distinct pids after junk (-1) is dropped; Market-1501's distractor
pid 0 counts as one identity, which is how its gallery reaches 751 (750 + 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reid.data.datasets.base import SPLITS, ReidDataset


@dataclass(frozen=True)
class Published:
    """Published (ids, images) per split and the number of cameras (None: not published)."""

    train: tuple[int, int]
    query: tuple[int, int]
    gallery: tuple[int, int]
    cameras: int | None
    source: str
    note: str = ""


_ALL = "query and gallery are the same test split: every test image queries all the others"
_ITEMS = "identities are clothing items; query and gallery are the release's own lists"

# docs/method.md section 6; CUHK03-NP from Zhong et al., CVPR 2017 (person-re-ranking/CUHK03-NP/README.md)
PUBLISHED: dict[str, Published] = {
    "market1501": Published(
        (751, 12936),
        (750, 3368),
        (751, 15913),
        6,
        "Zheng et al., ICCV 2015",
        "gallery ids count the distractor pid 0 as one identity",
    ),
    "dukemtmc": Published(
        (702, 16522),
        (702, 2228),
        (1110, 17661),
        8,
        "Zheng et al., ICCV 2017",
        "gallery ids include 408 distractor identities",
    ),
    "msmt17": Published(
        (1041, 32621),
        (3060, 11659),
        (3060, 82161),
        15,
        "Wei et al., CVPR 2018",
        "train figures are list_train.txt + list_val.txt (load with --with-val)",
    ),
    "cuhk03-np-detected": Published((767, 7365), (700, 1400), (700, 5332), None, "Zhong et al., CVPR 2017"),
    "cuhk03-np-labeled": Published((767, 7368), (700, 1400), (700, 5328), None, "Zhong et al., CVPR 2017"),
    # retrieval benchmarks: classes for ids; the class-disjoint splits of Song et al., CVPR 2016
    "cub200": Published((100, 5864), (100, 5924), (100, 5924), None, "Wah et al. 2011; Song et al. 2016", _ALL),
    "cars196": Published((98, 8054), (98, 8131), (98, 8131), None, "Krause et al. 2013; Song et al. 2016", _ALL),
    "sop": Published((11318, 59551), (11316, 60502), (11316, 60502), None, "Song et al., CVPR 2016", _ALL),
    "inshop": Published(
        (3997, 25882), (3985, 14218), (3985, 12612), None, "Liu et al., CVPR 2016 (DeepFashion In-Shop)", _ITEMS
    ),
}


@dataclass(frozen=True)
class SplitStats:
    ids: int
    images: int
    cameras: int


@dataclass
class CheckReport:
    """What `check_dataset` found: stats per split, the published figures, the differences."""

    name: str
    root: str
    splits: dict[str, SplitStats]
    cameras: int
    published: Published | None
    differences: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing differs from the published counts and nothing was skipped with a warning."""
        return not self.differences and not self.warnings


def split_stats(records: list) -> SplitStats:
    return SplitStats(len({r.pid for r in records}), len(records), len({r.camid for r in records}))


def _difference(what: str, found: int, published: int) -> str | None:
    if found == published:
        return None
    delta = found - published
    return f"{what}: {found:,} found, published {published:,} ({abs(delta):,} {'more' if delta > 0 else 'fewer'})"


def check_dataset(dataset: ReidDataset, published: Published | None = None) -> CheckReport:
    """Count ids/images/cameras per split of `dataset` and list every difference from
    `published` (default: the table entry for `dataset.name`; none for synthetic/custom)."""
    published = published or PUBLISHED.get(dataset.name)
    splits = {split: split_stats(dataset.split(split)) for split in SPLITS}
    report = CheckReport(
        dataset.name,
        dataset.root,
        splits,
        dataset.num_cameras,
        published,
        warnings=list(dataset.warnings),
        counts=dict(dataset.counts),
    )
    if dataset.meta.get("cameras") is False:
        report.notes.append("no cameras in this data set: every record has camid 0")
    if published is None:
        report.notes.append(f"no published counts for {dataset.name}; nothing to compare")
        return report
    if published.note:
        report.notes.append(published.note)
    skip_train = dataset.name == "msmt17" and not dataset.meta.get("with_val", False)
    if skip_train:
        report.notes.append("msmt17 train loaded without list_val.txt: train not compared (use --with-val)")
    for split in SPLITS:
        if split == "train" and skip_train:
            continue
        ids, images = getattr(published, split)
        for what, found, expected in (("identities", splits[split].ids, ids), ("images", splits[split].images, images)):
            diff = _difference(f"{split} {what}", found, expected)
            if diff:
                report.differences.append(diff)
    if published.cameras is not None:
        diff = _difference("cameras", report.cameras, published.cameras)
        if diff:
            report.differences.append(diff)
    return report


def format_check_report(report: CheckReport) -> str:
    """A plain-text table of found vs published counts, then differences, warnings and notes."""
    pub = report.published
    lines = [f"dataset {report.name} at {report.root}", ""]
    header = f"{'split':<8} {'ids':>7} {'images':>9} {'cameras':>8}"
    if pub is not None:
        header += f"   {'published ids':>13} {'images':>9}"
    lines.append(header)
    for split, stats in report.splits.items():
        row = f"{split:<8} {stats.ids:>7,} {stats.images:>9,} {stats.cameras:>8}"
        if pub is not None:
            ids, images = getattr(pub, split)
            row += f"   {ids:>13,} {images:>9,}"
        lines.append(row)
    cams = f"cameras: {report.cameras}"
    if pub is not None and pub.cameras is not None:
        cams += f" (published {pub.cameras})"
    lines += [cams, ""]
    dropped = {k: v for k, v in sorted(report.counts.items()) if v}
    if dropped:
        lines.append("counted: " + ", ".join(f"{k} {v:,}" for k, v in dropped.items()))
    if pub is not None:
        if report.differences:
            lines.append(f"{len(report.differences)} difference(s) from the published counts ({pub.source}):")
            lines += [f"  - {d}" for d in report.differences]
        else:
            lines.append(f"matches the published counts ({pub.source})")
    if report.warnings:
        lines.append(f"{len(report.warnings)} warning(s):")
        lines += [f"  - {w}" for w in report.warnings]
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)
