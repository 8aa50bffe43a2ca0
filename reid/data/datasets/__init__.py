"""Benchmark and custom loaders. `build_dataset(name, root)` is the one entry point."""

from __future__ import annotations

from pathlib import Path

from reid.errors import DataError

from .base import LoadOptions, Record, ReidDataset, relabel
from .custom import load_custom, load_custom_csv, load_custom_tree
from .market1501 import load_market_layout
from .metric_learning import inshop_list, load_cars196, load_cub200, load_inshop, load_sop
from .msmt17 import load_msmt17
from .roots import find_dataset_folder, resolve_data_root

# name -> the release's folder name under the data root (version suffixes are also recognised)
FOLDERS = {
    "market1501": "Market-1501",
    "dukemtmc": "DukeMTMC-reID",
    "msmt17": "MSMT17_V2",
    "cuhk03-np-detected": "cuhk03-np",
    "cuhk03-np-labeled": "cuhk03-np",
    "synthetic": "synthetic-market",
    "cub200": "CUB_200_2011",
    "cars196": "cars196",
    "sop": "Stanford_Online_Products",
    "inshop": "In-shop Clothes Retrieval Benchmark",
    "from-mot": "from-mot",
}
DATASET_NAMES = (*FOLDERS, "custom")

_LABELS = {
    "market1501": ("market1501", "Market-1501", "Market-1501 or Market-1501-v15.09.15"),
    "dukemtmc": ("dukemtmc", "DukeMTMC-reID", "DukeMTMC-reID"),
    "msmt17": ("msmt17", "MSMT17", "MSMT17_V1 or MSMT17_V2"),
    "cuhk03-np-detected": ("cuhk03np", "CUHK03-NP", "cuhk03-np (with detected/ inside)"),
    "cuhk03-np-labeled": ("cuhk03np", "CUHK03-NP", "cuhk03-np (with labeled/ inside)"),
    "synthetic": ("syntheticmarket", "synthetic-market", "synthetic-market (make demo writes it)"),
    "cub200": ("cub", "CUB-200-2011", "CUB_200_2011 (with images.txt inside)"),
    "cars196": ("cars", "Cars196", "cars196 (with cars_annos.mat inside)"),
    "sop": ("stanfordonlineproducts", "Stanford Online Products", "Stanford_Online_Products"),
    "inshop": ("inshop", "In-Shop Clothes", "In-shop Clothes Retrieval Benchmark or inshop"),
    "from-mot": ("frommot", "from-mot", "the --out folder of reid data from-mot"),
}
# deep-metric-learning benchmarks: (loader, layout test)
_METRIC_LEARNING = {
    "cub200": (load_cub200, lambda f: (f / "images.txt").is_file()),
    "cars196": (load_cars196, lambda f: (f / "cars_annos.mat").is_file()),
    "sop": (load_sop, lambda f: (f / "Ebay_train.txt").is_file() or (f / "Ebay_test.txt").is_file()),
    "inshop": (load_inshop, lambda f: _has_inshop_list(f)),
}


def _has_inshop_list(folder: Path) -> bool:
    try:
        return inshop_list(folder).is_file()
    except DataError:
        return False


def _is_market(folder: Path) -> bool:
    return (folder / "bounding_box_train").is_dir() or (folder / "bounding_box_test").is_dir()


def _is_msmt(folder: Path) -> bool:
    return (folder / "list_query.txt").is_file() or (folder / "list_train.txt").is_file()


def build_dataset(
    name: str,
    root: str | Path,
    *,
    strict: bool = False,
    skip_bad: bool = False,
    verify_images: bool = False,
    with_val: bool = False,
) -> ReidDataset:
    """Load dataset `name` from under the data root `root` (or `root` itself if it is the folder).

    Names: market1501, dukemtmc, msmt17, cuhk03-np-detected, cuhk03-np-labeled, synthetic,
    cub200, cars196, sop, inshop (retrieval benchmarks without cameras), custom (root is the
    custom tree or CSV), or custom:PATH (PATH relative to root).
    strict: unmatched file names are errors instead of counted warnings. skip_bad: skip
    unreadable images instead of failing. verify_images: decode every image now.
    with_val: MSMT17 only, add list_val.txt to the train split.
    """
    options = LoadOptions(strict=strict, skip_bad=skip_bad, verify_images=verify_images)
    root = Path(root)
    if name == "custom" or name.startswith("custom:"):
        target = root / name.split(":", 1)[1] if ":" in name else root
        return load_custom(target, options)
    if name not in FOLDERS:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(DATASET_NAMES)}")
    if with_val and name != "msmt17":
        raise DataError(f"with_val applies to msmt17 only, not {name}")
    key, label, expected = _LABELS[name]
    if name in _METRIC_LEARNING:
        loader, is_layout = _METRIC_LEARNING[name]
        return loader(find_dataset_folder(root, key, is_layout, label, expected), options)
    if name == "msmt17":
        return load_msmt17(find_dataset_folder(root, key, _is_msmt, label, expected), options, with_val)
    if name.startswith("cuhk03-np-"):
        variant = name.removeprefix("cuhk03-np-")
        if root.name == variant and _is_market(root):  # pointed straight at detected/ or labeled/
            return load_market_layout(root, name, options)
        folder = find_dataset_folder(root, key, lambda f: _is_market(f / variant), label, expected)
        return load_market_layout(folder / variant, name, options)
    return load_market_layout(find_dataset_folder(root, key, _is_market, label, expected), name, options)


__all__ = [
    "DATASET_NAMES",
    "FOLDERS",
    "LoadOptions",
    "Record",
    "ReidDataset",
    "build_dataset",
    "load_custom",
    "load_custom_csv",
    "load_custom_tree",
    "load_cars196",
    "load_cub200",
    "load_inshop",
    "load_sop",
    "load_market_layout",
    "load_msmt17",
    "relabel",
    "resolve_data_root",
]
