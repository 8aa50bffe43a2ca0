"""What `reid track` writes besides the tracks: the detector's boxes as a MOT det file, and the
tracking metrics against ground truth as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from reid.io.atomic import atomic_path, write_text

from .io import read_mot_rows
from .runner import Frame, TrackingResult


def recording(frames: Iterable[Frame], saved: list) -> Iterator[Frame]:
    """Pass the frames through, keeping (frame index, detections) of each in `saved` for a det file."""
    for frame in frames:
        saved.append((frame.index, frame.detections))
        yield frame


def write_detection_file(saved: list, path: str | Path) -> int:
    """A MOT det file (frame, -1, x, y, w, h, score, -1, -1, -1) of the recorded detections; rows written."""
    rows = [[index, -1, *det[:5], -1, -1, -1] for index, dets in saved for det in dets]
    with atomic_path(path) as tmp:
        np.savetxt(tmp, np.array(rows).reshape(-1, 10), fmt="%d,%d,%.2f,%.2f,%.2f,%.2f,%.4f,%d,%d,%d")
    return len(rows)


def score_tracks(gt: str | Path, result: TrackingResult, total: int | None, appearance: str) -> dict[str, Any]:
    """HOTA, IDF1, MOTA, ... (TrackEval) of the tracks against ground truth, with the run's timing."""
    from .metrics import evaluate_tracks

    rows = read_mot_rows(gt, "ground truth")
    return {
        "appearance": appearance,
        "metrics": evaluate_tracks(rows, result.rows, total or result.frames),
        "frames": result.frames,
        "frames_per_s": result.fps,
        "seconds": result.seconds,
        "cpu_seconds": result.cpu_seconds,
        "gt": str(gt),
    }


def write_metrics(record: dict[str, Any], path: str | Path) -> Path:
    """The metrics record as indented JSON, written atomically."""
    write_text(path, json.dumps(record, indent=2) + "\n")
    return Path(path)
