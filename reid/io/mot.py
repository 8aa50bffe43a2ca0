"""MOTChallenge sequences in, DeepSORT detection files out.

A sequence folder holds `seqinfo.ini` (imDir, frameRate, seqLength, imWidth, imHeight,
imExt), the frames `img1/000001.jpg ...` and `det/det.txt`, one detection per line:
`frame, id, x, y, w, h, conf, x3d, y3d, z3d` (id and the 3-D columns are -1 for public
detections). The DeepSORT detection file (the output of DeepSORT's
`tools/generate_detections.py`, read by its `deep_sort_app.py`) is an (N, 10 + D)
array: each detection's 10 MOT columns followed by its appearance feature, rows sorted
by frame and in file order within a frame.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from reid.data.boxes import boxes_from_tlwh, crop_boxes
from reid.data.image_io import read_image
from reid.errors import DataError
from reid.io.atomic import atomic_path


@dataclass(frozen=True)
class SequenceInfo:
    """What seqinfo.ini says about a sequence."""

    name: str
    image_dir: Path
    frame_rate: float
    length: int
    width: int
    height: int
    extension: str = ".jpg"

    def frame_path(self, frame: int) -> Path:
        return self.image_dir / f"{frame:06d}{self.extension}"


def read_seqinfo(seq_dir: str | Path) -> SequenceInfo:
    """Parse `seq_dir/seqinfo.ini`; a missing file or key is a DataError naming it."""
    seq_dir = Path(seq_dir)
    ini = seq_dir / "seqinfo.ini"
    if not ini.is_file():
        raise DataError(f"{seq_dir}: not a MOTChallenge sequence (no seqinfo.ini)")
    parser = configparser.ConfigParser()
    try:
        parser.read(ini)
        section = parser["Sequence"]
    except (configparser.Error, KeyError):
        raise DataError(f"{ini}: no [Sequence] section") from None
    try:
        return SequenceInfo(
            name=section.get("name", seq_dir.name),
            image_dir=seq_dir / section.get("imDir", "img1"),
            frame_rate=float(section.get("frameRate", "0")),
            length=int(section["seqLength"]),
            width=int(section["imWidth"]),
            height=int(section["imHeight"]),
            extension=section.get("imExt", ".jpg"),
        )
    except KeyError as exc:
        raise DataError(f"{ini}: missing key {exc.args[0]}") from None
    except ValueError as exc:
        raise DataError(f"{ini}: {exc}") from None


def read_mot_rows(path: str | Path, what: str = "MOT file", min_columns: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Rows (N, 10) float64 of a MOTChallenge text file and their 1-based line numbers (N,).

    Detections and results have 10 numbers a line, gt.txt has 9; lines with `min_columns` to 10
    numbers are accepted and the missing trailing columns become 1, 1, 1, -1 (mark/conf, class,
    visibility, z). Blank lines are skipped and a UTF-8 BOM is fine; a line with another count,
    a non-number, a frame that is not a positive integer or a negative width/height is a
    DataError naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    expected = "10" if min_columns == 10 else f"{min_columns} to 10"
    fill = [1.0, 1.0, 1.0, -1.0]
    rows, lines = [], []
    with open(path, encoding="utf-8-sig", errors="replace") as handle:  # a BOM (Windows editors) is fine
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(",")
            if not min_columns <= len(parts) <= 10:
                raise DataError(f"{path} line {number}: expected {expected} comma-separated numbers, got {len(parts)}")
            try:
                row = [float(p) for p in parts]
            except ValueError:
                bad = next(p for p in parts if not _is_number(p))
                raise DataError(f"{path} line {number}: {bad.strip()!r} is not a number") from None
            if not all(np.isfinite(row[:6])):
                raise DataError(f"{path} line {number}: frame, id and box must be finite numbers")
            if row[0] < 1 or row[0] != int(row[0]):
                raise DataError(f"{path} line {number}: frame must be a positive integer, got {parts[0].strip()}")
            if row[4] < 0 or row[5] < 0:
                raise DataError(f"{path} line {number}: negative box width or height ({row[4]:g}, {row[5]:g})")
            rows.append(row + fill[len(row) - 6 :])
            lines.append(number)
    return np.array(rows, np.float64).reshape(-1, 10), np.array(lines, np.int64)


def read_detections(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """MOT detections (N, 10) float64 and their 1-based line numbers (N,): exactly 10 numbers a line."""
    return read_mot_rows(path, "detection file", min_columns=10)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _frames(info: SequenceInfo, detections: np.ndarray, lines: np.ndarray, det_path: Path) -> Iterator[tuple]:
    """(frame image, its rows) in frame order; every frame with detections must have an image."""
    frames = detections[:, 0].astype(np.int64)
    order = np.argsort(frames, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(frames[order]) != 0])
    for begin, end in zip(starts, np.r_[starts[1:], len(order)]):
        rows = order[begin:end]
        frame = int(frames[rows[0]])
        image_path = info.frame_path(frame)
        if not image_path.is_file():
            raise DataError(f"{det_path} line {lines[rows[0]]}: frame {frame} has no image {image_path}")
        yield read_image(image_path), rows


def deepsort_detections(
    extractor,
    seq_dir: str | Path,
    detections: str | Path | None = None,
    progress: bool = True,
) -> np.ndarray:
    """The DeepSORT detection array (N, 10 + D) float32 of a MOT sequence.

    `extractor` is a `reid.inference.extractor.FeatureExtractor`; `detections` defaults to
    `seq_dir/det/det.txt`. Boxes are clipped to the frame for cropping only (the stored
    columns are the file's); crops of several frames share a batch.
    """
    seq_dir = Path(seq_dir)
    info = read_seqinfo(seq_dir)
    det_path = Path(detections) if detections else seq_dir / "det" / "det.txt"
    dets, lines = read_detections(det_path)
    if len(dets) == 0:
        raise DataError(f"{det_path}: no detections (the file is empty)")
    out = np.empty((len(dets), 10 + extractor.feature_dim), np.float32)
    pending_crops: list[np.ndarray] = []
    pending_rows: list[int] = []
    written = 0

    def flush() -> None:
        nonlocal written
        feats = extractor(pending_crops)
        out[written : written + len(feats), :10] = dets[pending_rows]
        out[written : written + len(feats), 10:] = feats
        written += len(feats)
        pending_crops.clear()
        pending_rows.clear()

    bar = tqdm(total=len(dets), desc=info.name, unit="det", disable=not progress, leave=False)
    for frame, rows in _frames(info, dets, lines, det_path):
        pending_crops.extend(crop_boxes(frame, boxes_from_tlwh(dets[rows, 2:6])))
        pending_rows.extend(rows.tolist())
        if len(pending_crops) >= extractor.batch_size:
            bar.update(len(pending_crops))
            flush()
    if pending_crops:
        bar.update(len(pending_crops))
        flush()
    bar.close()
    return out


def save_npy_atomic(array: np.ndarray, path: str | Path) -> Path:
    """np.save to a temp file beside `path`, then rename: no half-written .npy under `path`."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)
    return path
