"""Deep-metric-learning benchmarks: CUB-200-2011, Cars196, Stanford Online Products, In-Shop.

Their train and test classes are disjoint and they have no cameras: every record gets
camid 0 and the class as its pid. The test split is both query and gallery (the same
list) for CUB, Cars and SOP, whose protocol has every test image query all the others;
In-Shop has its own query and gallery lists. `meta["cameras"]` is False for all four.

Layouts, as the official archives unpack:

    CUB_200_2011/  images.txt (`<id> <path>`), image_class_labels.txt (`<id> <class>`), images/
                   classes 1-100 train, 101-200 test
    cars196/       cars_annos.mat (annotations: relative_im_path, class), car_ims/
                   classes 1-98 train, 99-196 test
    Stanford_Online_Products/  Ebay_train.txt, Ebay_test.txt
                   (`image_id class_id super_class_id path`, one header line)
    In-shop Clothes Retrieval Benchmark/  list_eval_partition.txt (or Eval/...)
                   (a count line, a header line, then `<img/...jpg> id_<item> train|query|gallery`)
"""

from __future__ import annotations

from pathlib import Path

from reid.errors import DataError

from .base import Issues, LoadOptions, Record, ReidDataset, finish

CUB_LINE = "<image id> <relative path> in images.txt, <image id> <class 1-200> in image_class_labels.txt"
SOP_LINE = "<image_id> <class_id> <super_class_id> <relative path>"
INSHOP_LINE = "<img/...jpg> id_<item number> train|query|gallery"


def _lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of every non-blank line of a required list file."""
    if not path.is_file():
        raise DataError(f"{path}: list file not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _bad_line(number: int, line: str) -> str:
    return f"line {number} {line[:60]!r}"


def _split_by_class(records: list[Record], last_train_class: int) -> dict[str, list[Record]]:
    train = [r for r in records if r.pid <= last_train_class]
    test = [r for r in records if r.pid > last_train_class]
    return {"train": train, "query": test, "gallery": test}


def _finish(name: str, root: Path, splits: dict[str, list[Record]], issues: Issues, protocol: str) -> ReidDataset:
    dataset = finish(name, root, splits, issues, meta={"cameras": False, "protocol": protocol}, cameras=False)
    if protocol == "all-vs-all":
        dataset.gallery = dataset.query  # one list: the protocol and the feature bank rely on it being the same
    return dataset


def _check_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    return root


def load_cub200(root: str | Path, options: LoadOptions | None = None) -> ReidDataset:
    """CUB-200-2011: classes 1-100 train (5,864 images), 101-200 test (5,924)."""
    root = _check_root(root)
    issues = Issues(options or LoadOptions())
    paths: dict[str, str] = {}
    unmatched: list[str] = []
    for number, line in _lines(root / "images.txt"):
        fields = line.split(maxsplit=1)
        if len(fields) != 2 or not fields[0].isdigit():
            unmatched.append(_bad_line(number, line))
            continue
        paths[fields[0]] = fields[1]
    issues.unmatched(root / "images.txt", unmatched, CUB_LINE)
    records, unmatched, unknown = [], [], []
    labels_file = root / "image_class_labels.txt"
    for number, line in _lines(labels_file):
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit() or not 1 <= int(fields[1]) <= 200:
            unmatched.append(_bad_line(number, line))
        elif fields[0] not in paths:
            unknown.append(_bad_line(number, line))
        else:
            records.append(Record(str(root / "images" / paths[fields[0]]), int(fields[1]), 0))
    issues.unmatched(labels_file, unmatched, CUB_LINE)
    if unknown:
        issues.warn(
            f"{labels_file}: skipped {len(unknown)} line(s) whose image id is not in images.txt: {unknown[0]}",
            "unmatched",
            len(unknown),
        )
    if not records:
        raise DataError(f"{labels_file}: no lines of the form {CUB_LINE}")
    return _finish("cub200", root, _split_by_class(records, 100), issues, "all-vs-all")


def load_cars196(root: str | Path, options: LoadOptions | None = None) -> ReidDataset:
    """Cars196 from cars_annos.mat: classes 1-98 train (8,054 images), 99-196 test (8,131)."""
    import numpy as np
    import scipy.io

    root = _check_root(root)
    issues = Issues(options or LoadOptions())
    mat_file = root / "cars_annos.mat"
    if not mat_file.is_file():
        raise DataError(f"{mat_file}: annotation file not found")
    try:
        mat = scipy.io.loadmat(mat_file, squeeze_me=True)
    except (ValueError, TypeError, OSError) as exc:
        raise DataError(f"{mat_file}: not a readable MATLAB file ({exc})") from None
    annotations = mat.get("annotations")
    fields = getattr(getattr(annotations, "dtype", None), "names", None) or ()
    if "relative_im_path" not in fields or "class" not in fields:
        raise DataError(f"{mat_file}: no 'annotations' struct with fields relative_im_path and class")
    annotations = np.atleast_1d(annotations)
    records, unmatched = [], []
    for number, entry in enumerate(annotations, start=1):
        path, label = entry["relative_im_path"], entry["class"]
        try:
            label = int(label)
        except (TypeError, ValueError):
            label = -1
        if not isinstance(path, str) or not path.strip() or not 1 <= label <= 196:
            unmatched.append(f"annotation {number} ({str(path)[:40]!r}, class {entry['class']!r})")
            continue
        records.append(Record(str(root / path.strip()), label, 0))
    issues.unmatched(mat_file, unmatched, "annotations with a relative_im_path and a class 1-196")
    if not records:
        raise DataError(f"{mat_file}: no usable annotations")
    return _finish("cars196", root, _split_by_class(records, 98), issues, "all-vs-all")


def _sop_list(list_file: Path, root: Path, issues: Issues) -> list[Record]:
    records, unmatched = [], []
    for number, line in _lines(list_file):
        fields = line.split()
        if number == 1 and fields and not fields[0].isdigit():
            continue  # the header `image_id class_id super_class_id path`
        if len(fields) != 4 or not all(f.isdigit() for f in fields[:3]) or int(fields[1]) < 1:
            unmatched.append(_bad_line(number, line))
            continue
        records.append(Record(str(root / fields[3]), int(fields[1]), 0))
    issues.unmatched(list_file, unmatched, SOP_LINE)
    if not records:
        raise DataError(f"{list_file}: no lines of the form {SOP_LINE}")
    return records


def load_sop(root: str | Path, options: LoadOptions | None = None) -> ReidDataset:
    """Stanford Online Products: Ebay_train.txt (11,318 classes), Ebay_test.txt (11,316 classes)."""
    root = _check_root(root)
    issues = Issues(options or LoadOptions())
    train = _sop_list(root / "Ebay_train.txt", root, issues)
    test = _sop_list(root / "Ebay_test.txt", root, issues)
    return _finish("sop", root, {"train": train, "query": test, "gallery": test}, issues, "all-vs-all")


def inshop_list(root: Path) -> Path:
    """list_eval_partition.txt at the top of the release or in its Eval/ folder."""
    for candidate in (root / "list_eval_partition.txt", root / "Eval" / "list_eval_partition.txt"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{root}: list_eval_partition.txt not found (looked in the folder and in Eval/)")


def load_inshop(root: str | Path, options: LoadOptions | None = None) -> ReidDataset:
    """In-Shop Clothes Retrieval: train 3,997 items, query and gallery 3,985 items each.

    Image paths (`img/...`) are taken relative to the folder holding `img/` (the release
    root, or its Img/ folder when the archive was unpacked there).
    """
    root = _check_root(root)
    issues = Issues(options or LoadOptions())
    list_file = inshop_list(root)
    base = root / "Img" if not (root / "img").is_dir() and (root / "Img" / "img").is_dir() else root
    splits: dict[str, list[Record]] = {"train": [], "query": [], "gallery": []}
    unmatched = []
    for number, line in _lines(list_file):
        fields = line.split()
        if number <= 2 and (len(fields) == 1 or fields[:1] == ["image_name"]):
            continue  # the image count, then the header `image_name item_id evaluation_status`
        item = fields[1].removeprefix("id_") if len(fields) == 3 else ""
        if not item.isdigit() or fields[2] not in splits:
            unmatched.append(_bad_line(number, line))
            continue
        splits[fields[2]].append(Record(str(base / fields[0]), int(item), 0))
    issues.unmatched(list_file, unmatched, INSHOP_LINE)
    return _finish("inshop", root, splits, issues, "query-gallery")
