"""MSMT17 (V1 and V2): images listed in list_{train,val,query,gallery}.txt.

Each list line is `<relative path> <pid>`, e.g. `0000/0000_000_01_0303morning_0015_0.jpg 0`;
the third `_` field of the file name is the camera (1..15). V1 keeps the images in
`train/` and `test/`; V2 (faces blurred) in `mask_train_v2/` and `mask_test_v2/`.
The published train figure (1,041 ids / 32,621 images) counts list_train plus list_val.
"""

from __future__ import annotations

from pathlib import Path

from reid.errors import DataError

from .base import Issues, LoadOptions, Record, ReidDataset, finish

LISTS = {"train": "list_train.txt", "val": "list_val.txt", "query": "list_query.txt", "gallery": "list_gallery.txt"}
# version -> (train folder, test folder); matched case-insensitively
VERSIONS = {"V1": ("train", "test"), "V2": ("mask_train_v2", "mask_test_v2")}
LINE = "<folder>/<pid>_<index>_<camera>_<date+time>_<frame>_<n>.jpg <pid>"


def _child(root: Path, name: str) -> Path | None:
    """The child of `root` called `name`, ignoring case."""
    exact = root / name
    if exact.is_dir():
        return exact
    for child in root.iterdir():
        if child.name.lower() == name.lower() and child.is_dir():
            return child
    return None


def image_folders(root: Path) -> tuple[str, Path, Path]:
    """(version, train folder, test folder) of an MSMT17 release folder."""
    for version, (train, test) in VERSIONS.items():
        train_dir, test_dir = _child(root, train), _child(root, test)
        if train_dir is not None and test_dir is not None:
            return version, train_dir, test_dir
    raise DataError(
        f"{root}: MSMT17 image folders not found (expected train/ and test/ for V1, "
        "mask_train_v2/ and mask_test_v2/ for V2)"
    )


def camera_of(name: str) -> int | None:
    """Camera (from 1) of `0000_000_01_0303morning_0015_0.jpg`, or None if not that shape."""
    fields = Path(name).stem.split("_")
    if len(fields) < 4 or not all(f.isdigit() for f in fields[:3]) or int(fields[2]) < 1:
        return None
    return int(fields[2])


def parse_list(list_file: Path, image_dir: Path, issues: Issues) -> list[Record]:
    """Records of one list file; malformed lines are warned about and counted (error if strict)."""
    if not list_file.is_file():
        raise DataError(f"{list_file}: MSMT17 list file not found")
    records, unmatched, junk = [], [], 0
    text = list_file.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        cam = camera_of(fields[0]) if len(fields) == 2 else None
        if cam is None or not fields[1].lstrip("-").isdigit():
            unmatched.append(f"line {number} {line.strip()[:60]!r}")
            continue
        pid = int(fields[1])
        if pid == -1:
            junk += 1
            continue
        records.append(Record(str(image_dir / fields[0]), pid, cam - 1))
    issues.unmatched(list_file, unmatched, LINE)
    issues.counts["junk"] += junk
    if not records:
        raise DataError(f"{list_file}: no lines of the form {LINE}")
    return records


def load_msmt17(root: str | Path, options: LoadOptions | None = None, with_val: bool = False) -> ReidDataset:
    """Load MSMT17 V1 or V2 from its release folder; `with_val` adds list_val to train."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    issues = Issues(options or LoadOptions())
    version, train_dir, test_dir = image_folders(root)
    train = parse_list(root / LISTS["train"], train_dir, issues)
    if with_val:
        train += parse_list(root / LISTS["val"], train_dir, issues)
    splits = {
        "train": train,
        "query": parse_list(root / LISTS["query"], test_dir, issues),
        "gallery": parse_list(root / LISTS["gallery"], test_dir, issues),
    }
    return finish("msmt17", root, splits, issues, meta={"version": version, "with_val": with_val})
