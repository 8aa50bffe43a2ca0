"""Miniature copies of each benchmark's on-disk layout, for loader tests.

Every builder writes a few tiny real images (JPEG or PNG, seeded) with the
release's naming scheme and the odd files each release ships (Market's Thumbs.db
and gt_bbox/, Duke's licence files, MSMT17's `_ex` names), and returns the counts
the loader must find, worked out here independently of the loader.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np


@dataclass
class Expected:
    """Per split (ids, images) after dropping junk; cameras over all splits; junk dropped."""

    folder: Path
    splits: dict[str, tuple[int, int]]
    cameras: int
    junk: int = 0
    extra: dict[str, object] = field(default_factory=dict)


def _seed(*parts: object) -> int:
    """A stable seed from any values (hash() of strings changes between runs)."""
    return zlib.crc32(repr(parts).encode())


def write_image(path: Path, seed: int, size: tuple[int, int] = (16, 8)) -> Path:
    """A small random colour image; the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(encoded.tobytes())
    return path


def _counts(names: list[tuple[int, int]]) -> tuple[int, int]:
    kept = [pid for pid, _ in names if pid != -1]
    return len(set(kept)), len(kept)


def _write_market_like(folder: Path, entries: list[tuple[int, int]], name, ext: str) -> None:
    for i, (pid, cam) in enumerate(entries):
        write_image(folder / (name(pid, cam, i) + ext), seed=_seed(folder.name, i))


def _market_name(pid: int, cam: int, i: int) -> str:
    return f"{pid:04d}_c{cam}s1_{i:06d}_0{i % 3}" if pid >= 0 else f"-1_c{cam}s1_{i:06d}_00"


MARKET_SPLITS = {
    "bounding_box_train": [(2, 1), (2, 3), (7, 1), (7, 2), (7, 2), (9, 4), (9, 5)],
    "query": [(3, 1), (5, 2), (11, 6)],
    "bounding_box_test": [(3, 2), (3, 4), (5, 1), (5, 3), (11, 1), (0, 1), (0, 5), (-1, 2), (-1, 6)],
}


def make_market(root: Path, folder: str = "Market-1501-v15.09.15") -> Expected:
    """Market-1501: junk -1 and distractors 0000 in the gallery, Thumbs.db, gt_bbox/, readme.txt."""
    base = root / folder
    for split, entries in MARKET_SPLITS.items():
        _write_market_like(base / split, entries, _market_name, ".jpg")
    for split in ("bounding_box_train", "bounding_box_test"):
        (base / split / "Thumbs.db").write_bytes(b"\x00" * 64)
    write_image(base / "gt_bbox" / "0003_c1s1_000001_00.jpg", seed=1)
    (base / "readme.txt").write_text("Market-1501 miniature\n")
    train, query, gallery = (MARKET_SPLITS[k] for k in ("bounding_box_train", "query", "bounding_box_test"))
    cams = {c for entries in MARKET_SPLITS.values() for pid, c in entries if pid != -1}
    return Expected(
        base, {"train": _counts(train), "query": _counts(query), "gallery": _counts(gallery)}, cameras=len(cams), junk=2
    )


DUKE_SPLITS = {
    "bounding_box_train": [(1, 1), (1, 2), (4, 7), (4, 8), (4, 8)],
    "query": [(5, 1), (6, 3)],
    "bounding_box_test": [(5, 2), (6, 5), (6, 4), (8, 1), (12, 6)],  # 8, 12: gallery-only distractor ids
}


def make_duke(root: Path, folder: str = "DukeMTMC-reID") -> Expected:
    """DukeMTMC-reID: `0001_c2_f0046182.jpg`, licence/citation files at the top, gallery-only ids."""
    base = root / folder
    for split, entries in DUKE_SPLITS.items():
        _write_market_like(base / split, entries, lambda p, c, i: f"{p:04d}_c{c}_f{46182 + 97 * i:07d}", ".jpg")
    for name in ("CITATION_DukeMTMC.txt", "LICENSE_DukeMTMC.txt", "LICENSE_DukeMTMC-reID.txt", "README.md"):
        (base / name).write_text("miniature\n")
    cams = {c for entries in DUKE_SPLITS.values() for _, c in entries}
    s = DUKE_SPLITS
    return Expected(
        base,
        {
            "train": _counts(s["bounding_box_train"]),
            "query": _counts(s["query"]),
            "gallery": _counts(s["bounding_box_test"]),
        },
        cameras=len(cams),
    )


CUHK_SPLITS = {
    "bounding_box_train": [(1, 1), (1, 2), (3, 1), (3, 2)],
    "query": [(2, 1), (4, 2)],
    "bounding_box_test": [(2, 2), (2, 2), (4, 1), (4, 1)],
}


def make_cuhk03np(root: Path, folder: str = "cuhk03-np") -> dict[str, Expected]:
    """CUHK03-NP: detected/ and labeled/, each Market-like with `0001_c1_1.png` names."""
    out = {}
    for variant, extra in (("detected", [(6, 1), (6, 2)]), ("labeled", [])):
        base = root / folder / variant
        splits = {k: list(v) for k, v in CUHK_SPLITS.items()}
        splits["bounding_box_train"] += extra
        for split, entries in splits.items():
            _write_market_like(base / split, entries, lambda p, c, i: f"{p:04d}_c{c}_{i + 1}", ".png")
        out[variant] = Expected(
            base,
            {
                "train": _counts(splits["bounding_box_train"]),
                "query": _counts(splits["query"]),
                "gallery": _counts(splits["bounding_box_test"]),
            },
            cameras=2,
        )
    return out


MSMT_SPLITS = {
    "train": [(0, 1), (0, 3), (1, 2), (1, 2), (2, 15)],
    "val": [(1, 4), (3, 5)],
    "query": [(0, 1), (1, 9)],
    "gallery": [(0, 2), (0, 7), (1, 10), (1, 11)],
}


def make_msmt(root: Path, version: str = "V1") -> Expected:
    """MSMT17_V1 (train/, test/) or MSMT17_V2 (mask_train_v2/, mask_test_v2/) with list files.

    The image folder holds an extra unlisted image (loaders must go by the lists) and one
    `_ex` name as in the release.
    """
    base = root / f"MSMT17_{version}"
    train_dir, test_dir = ("train", "test") if version == "V1" else ("mask_train_v2", "mask_test_v2")
    for split, entries in MSMT_SPLITS.items():
        folder = base / (test_dir if split in ("query", "gallery") else train_dir)
        lines = []
        for i, (pid, cam) in enumerate(entries):
            suffix = "_ex" if (split, i) == ("train", 4) else ""
            rel = f"{pid:04d}/{pid:04d}_{i:03d}_{cam:02d}_0303morning_{i:04d}_{i % 3}{suffix}.jpg"
            write_image(folder / rel, seed=_seed(split, i))
            lines.append(f"{rel} {pid}")
        (base / f"list_{split}.txt").write_text("\n".join(lines) + "\n")
    write_image(base / train_dir / "0099" / "0099_000_01_0303noon_0001_0.jpg", seed=99)
    s = MSMT_SPLITS
    cams = {c for split in ("train", "query", "gallery") for _, c in s[split]}
    return Expected(
        base,
        {"train": _counts(s["train"]), "query": _counts(s["query"]), "gallery": _counts(s["gallery"])},
        cameras=len(cams),
        extra={"train_with_val": _counts(s["train"] + s["val"])},
    )


CUSTOM = {
    "train": [(10, 1), (10, 2), (20, 1), (20, 3)],
    "query": [(30, 1), (40, 2)],
    "gallery": [(30, 2), (30, 3), (40, 1), (0, 3), (-1, 1)],
}


def make_custom_tree(root: Path) -> Expected:
    """`<root>/<split>/<pid>/<anything>_c<cam>_<n>.jpg`, with one PNG and a junk -1 folder."""
    for split, entries in CUSTOM.items():
        for i, (pid, cam) in enumerate(entries):
            ext = ".png" if i == 0 else ".jpg"
            write_image(root / split / str(pid) / f"door{i}_c{cam}_{i:04d}{ext}", seed=_seed(split, i))
    cams = {c for entries in CUSTOM.values() for pid, c in entries if pid != -1}
    return Expected(root, {k: _counts(v) for k, v in CUSTOM.items()}, cameras=len(cams), junk=1)


def make_custom_csv(root: Path, name: str = "labels.csv") -> Expected:
    """Images in root/images/, listed in root/<name> with 0-based camids."""
    lines = ["path,pid,camid,split"]
    for split, entries in CUSTOM.items():
        for i, (pid, cam) in enumerate(entries):
            rel = f"images/{split}_{i}.jpg"
            write_image(root / rel, seed=_seed(split, i, "csv"))
            lines.append(f"{rel},{pid},{cam - 1},{split}")
    (root / name).write_text("\n".join(lines) + "\n")
    cams = {c for entries in CUSTOM.values() for pid, c in entries if pid != -1}
    return Expected(root / name, {k: _counts(v) for k, v in CUSTOM.items()}, cameras=len(cams), junk=1)


# -- deep-metric-learning benchmarks (no cameras; classes for ids) ---------------------------------

CUB_CLASSES = {3: 2, 100: 3, 101: 2, 150: 1, 200: 3}  # class -> images; 1-100 train, 101-200 test


def make_cub(
    root: Path, folder: str = "CUB_200_2011", classes: dict[int, int] | None = None, size: tuple[int, int] = (16, 8)
) -> Expected:
    """CUB-200-2011: images.txt + image_class_labels.txt (ids 1..N), images/<class folder>/, README.
    `classes` (class -> images) replaces the default miniature; images are `size` (h, w)."""
    base = root / folder
    classes = classes or CUB_CLASSES
    lines, labels, i = [], [], 0
    for cls, count in classes.items():
        for j in range(count):
            i += 1
            rel = f"{cls:03d}.Bird_{cls}/Bird_{cls}_{j:04d}.jpg"
            write_image(base / "images" / rel, seed=_seed("cub", i), size=size)
            lines.append(f"{i} {rel}")
            labels.append(f"{i} {cls}")
    (base / "images.txt").write_text("\n".join(lines) + "\n")
    (base / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (base / "train_test_split.txt").write_text("".join(f"{k} 1\n" for k in range(1, i + 1)))
    (base / "README").write_text("CUB miniature\n")
    train = [(c, n) for c, n in classes.items() if c <= 100]
    test = [(c, n) for c, n in classes.items() if c > 100]
    test_counts = (len(test), sum(n for _, n in test))
    return Expected(
        base, {"train": (len(train), sum(n for _, n in train)), "query": test_counts, "gallery": test_counts}, 1
    )


CARS_CLASSES = {1: 2, 98: 3, 99: 2, 196: 2}


def make_cars(root: Path, folder: str = "cars196", extra: list[tuple[str, int]] | None = None) -> Expected:
    """Cars196: cars_annos.mat (scipy.io.savemat, the release's struct fields) and car_ims/."""
    import scipy.io

    base = root / folder
    rows, i = [], 0
    for cls, count in CARS_CLASSES.items():
        for _ in range(count):
            i += 1
            rel = f"car_ims/{i:06d}.jpg"
            write_image(base / rel, seed=_seed("cars", i))
            rows.append((rel, cls))
    rows += extra or []
    dtype = [(name, object) for name in ("relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class")]
    dtype.append(("test", object))
    annotations = np.zeros((1, len(rows)), dtype=dtype)
    for k, (rel, cls) in enumerate(rows):
        annotations[0, k] = (rel, 1, 2, 10, 12, cls, k % 2)
    class_names = np.array([f"Car {c}" for c in range(1, 197)], dtype=object)[None, :]
    scipy.io.savemat(base / "cars_annos.mat", {"annotations": annotations, "class_names": class_names})
    train = [(c, n) for c, n in CARS_CLASSES.items() if c <= 98]
    test = [(c, n) for c, n in CARS_CLASSES.items() if c > 98]
    test_counts = (len(test), sum(n for _, n in test))
    return Expected(
        base, {"train": (len(train), sum(n for _, n in train)), "query": test_counts, "gallery": test_counts}, 1
    )


SOP_SPLITS = {"train": {1: 3, 2: 2, 5: 2}, "test": {11319: 2, 11320: 3, 22634: 1}}


def make_sop(root: Path, folder: str = "Stanford_Online_Products") -> Expected:
    """Stanford Online Products: Ebay_{train,test}.txt with their header, images in <super>_final/."""
    base = root / folder
    i = 0
    for split, classes in SOP_SPLITS.items():
        lines = ["image_id class_id super_class_id path"]
        for cls, count in classes.items():
            for j in range(count):
                i += 1
                rel = f"bicycle_final/{111085122000 + cls}_{j}.JPG"
                write_image(base / rel, seed=_seed("sop", i), size=(12, 12))
                lines.append(f"{i} {cls} 1 {rel}")
        (base / f"Ebay_{split}.txt").write_text("\n".join(lines) + "\n")
    (base / "Ebay_info.txt").write_text("image_id class_id super_class_id path\n")
    (base / "LICENSE").write_text("miniature\n")
    train, test = SOP_SPLITS["train"], SOP_SPLITS["test"]
    test_counts = (len(test), sum(test.values()))
    return Expected(base, {"train": (len(train), sum(train.values())), "query": test_counts, "gallery": test_counts}, 1)


INSHOP_ITEMS = {  # item -> (train, query, gallery) images
    2: (3, 0, 0),
    7: (2, 0, 0),
    12: (0, 2, 1),
    80: (0, 1, 2),
}


def make_inshop(root: Path, folder: str = "In-shop Clothes Retrieval Benchmark") -> Expected:
    """In-Shop: Eval/list_eval_partition.txt (count line, header, rows) and img/WOMEN/.../id_XXXXXXXX/."""
    base = root / folder
    rows = []
    for item, counts in INSHOP_ITEMS.items():
        n = 0
        for split, count in zip(("train", "query", "gallery"), counts):
            for _ in range(count):
                n += 1
                rel = f"img/WOMEN/Dresses/id_{item:08d}/{n:02d}_1_front.jpg"
                write_image(base / rel, seed=_seed("inshop", item, n))
                rows.append(f"{rel}  id_{item:08d}  {split}")
    (base / "Eval").mkdir(parents=True, exist_ok=True)
    text = f"{len(rows)}\nimage_name item_id evaluation_status\n" + "\n".join(rows) + "\n"
    (base / "Eval" / "list_eval_partition.txt").write_text(text)
    splits = {}
    for k, split in enumerate(("train", "query", "gallery")):
        items = [c[k] for c in INSHOP_ITEMS.values() if c[k]]
        splits[split] = (len(items), sum(items))
    return Expected(base, splits, 1)
