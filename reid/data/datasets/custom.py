"""Users' own cameras: a folder tree or a CSV file (see datasets/README.md).

Tree:  <root>/{train,query,gallery}/<pid>/<anything>_c<camera from 1>....jpg
CSV:   columns path,pid,camid,split (camid 0-based, paths relative to the CSV's folder)

pid -1 marks junk (dropped), pid 0 is kept; train pids are relabelled 0..N-1.
A missing train split is allowed (evaluation only) and noted in the warnings.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from reid.errors import DataError

from .base import MAX_ID, SPLITS, Issues, LoadOptions, Record, ReidDataset, finish, list_folder

_CAMERA = re.compile(r"(?:^|_)c([1-9]\d*)")
TREE_NAMING = "<split>/<pid>/<anything>_c<camera from 1>*.jpg as in query/17/gate_c2_0001.jpg"
CSV_COLUMNS = ("path", "pid", "camid", "split")


def camera_in_name(name: str) -> int | None:
    """Camera (from 1) written as `_c<cam>` (or a leading `c<cam>`) in a file name."""
    match = _CAMERA.search(Path(name).stem)
    return None if match is None else int(match.group(1))


def _parse_pid(text: str) -> int | None:
    text = text.strip()
    return int(text) if re.fullmatch(r"-?\d{1,10}", text) and -1 <= int(text) <= MAX_ID else None


def _tree_split(folder: Path, split: str, issues: Issues) -> list[Record]:
    records, unmatched, junk = [], [], 0
    for child in sorted(folder.iterdir()):
        if not child.is_dir():
            if child.name.lower() not in {"thumbs.db", ".ds_store", "desktop.ini"}:
                unmatched.append(child.name)
            continue
        pid = _parse_pid(child.name)
        if pid is None:
            unmatched.append(child.name + "/")
            continue
        for entry in list_folder(child, issues):
            cam = camera_in_name(entry.name)
            if cam is None:
                unmatched.append(f"{child.name}/{entry.name}")
            elif pid == -1:
                junk += 1
            else:
                records.append(Record(str(child / entry.name), pid, cam - 1))
    issues.unmatched(folder, unmatched, TREE_NAMING)
    issues.counts["junk"] += junk
    if not records:
        raise DataError(f"{folder}: no images laid out as {TREE_NAMING}")
    return records


def load_custom_tree(root: str | Path, options: LoadOptions | None = None) -> ReidDataset:
    """Load `<root>/<split>/<pid>/<anything>_c<cam>...` (query and gallery required)."""
    root = Path(root)
    issues = Issues(options or LoadOptions())
    splits: dict[str, list[Record]] = {}
    for split in SPLITS:
        folder = root / split
        if folder.is_dir():
            splits[split] = _tree_split(folder, split, issues)
        elif split == "train":
            splits[split] = []
            issues.warn(f"{root}: no train folder; the dataset can be evaluated but not trained on", "no_train", 1)
        else:
            raise DataError(f"{folder}: {split} folder not found (custom tree needs query/ and gallery/)")
    return finish("custom", root, splits, issues, meta={"format": "tree"}, optional_train=True)


def load_custom_csv(csv_path: str | Path, options: LoadOptions | None = None) -> ReidDataset:
    """Load a CSV with columns path,pid,camid,split; a malformed row is a DataError naming its line."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: CSV file not found")
    issues = Issues(options or LoadOptions())
    splits: dict[str, list[Record]] = {split: [] for split in SPLITS}
    reader = csv.DictReader(io.StringIO(_read_utf8(csv_path), newline=""))
    try:
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        missing = [c for c in CSV_COLUMNS if c not in columns]
        if missing:
            raise DataError(
                f"{csv_path}: missing column(s) {', '.join(missing)}; need a header {','.join(CSV_COLUMNS)}"
            )
        reader.fieldnames = columns
        junk = 0
        for row in reader:
            line = reader.line_num
            values = {c: (row.get(c) or "").strip() for c in CSV_COLUMNS}
            split = values["split"].lower()
            if split not in SPLITS:
                raise DataError(f"{csv_path} line {line}: split {values['split']!r} is not train, query or gallery")
            pid = _parse_pid(values["pid"])
            if pid is None:
                pid_text = _short(values["pid"])
                raise DataError(f"{csv_path} line {line}: pid {pid_text} is not an integer in -1..{MAX_ID}")
            if not re.fullmatch(r"\d{1,10}", values["camid"]) or int(values["camid"]) > MAX_ID:
                raise DataError(
                    f"{csv_path} line {line}: camid {_short(values['camid'])} is not an integer in 0..{MAX_ID} "
                    "(camid is 0-based)"
                )
            if not values["path"]:
                raise DataError(f"{csv_path} line {line}: empty path")
            if pid == -1:
                junk += 1
                continue
            path = Path(values["path"])
            path = path if path.is_absolute() else csv_path.parent / path
            splits[split].append(Record(str(path), pid, int(values["camid"])))
    except csv.Error as exc:  # e.g. a field over the csv module's 128 KiB limit
        raise DataError(f"{csv_path} line {reader.line_num}: not a valid CSV row ({exc})") from None
    issues.counts["junk"] += junk
    if not splits["train"]:
        issues.warn(f"{csv_path}: no train rows; the dataset can be evaluated but not trained on", "no_train", 1)
    for split in ("query", "gallery"):
        if not splits[split]:
            raise DataError(f"{csv_path}: no {split} rows")
    return finish("custom", csv_path, splits, issues, meta={"format": "csv"}, optional_train=True)


def _read_utf8(csv_path: Path) -> str:
    """The CSV's text (a UTF-8 BOM is fine); another encoding is a DataError naming the line."""
    data = csv_path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{csv_path} line {line}: not UTF-8 text (save the CSV as UTF-8)") from None


def _short(text: str) -> str:
    return repr(text) if len(text) <= 24 else repr(text[:21] + "...")


def load_custom(root: str | Path, options: LoadOptions | None = None) -> ReidDataset:
    """A CSV file, a folder with query/ and gallery/ subfolders, or a folder holding one CSV."""
    root = Path(root)
    if root.is_file():
        return load_custom_csv(root, options)
    if not root.is_dir():
        raise DataError(f"{root}: custom dataset not found (give a folder or a CSV file)")
    if (root / "query").is_dir() or (root / "gallery").is_dir():
        return load_custom_tree(root, options)
    csvs = sorted(root.glob("*.csv"))
    if len(csvs) == 1:
        return load_custom_csv(csvs[0], options)
    found = f"{len(csvs)} CSV files" if csvs else "neither query/ and gallery/ folders nor a CSV file"
    raise DataError(
        f"{root}: found {found}; a custom dataset is a train/query/gallery tree "
        "or one CSV with columns path,pid,camid,split"
    )
