"""Reading MOTChallenge ground-truth and result files (6 to 10 comma-separated numbers a line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid.errors import DataError


def read_mot_rows(path: str | Path, what: str = "MOT file") -> np.ndarray:
    """Rows (N, 10) float64 of a gt.txt (9 columns) or result file (10); missing columns become 1, 1, 1, -1.

    A line with fewer than 6 or more than 10 numbers, a non-number, a frame that is not a
    positive integer or a negative width/height is a DataError naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    rows = []
    fill = [1.0, 1.0, 1.0, -1.0]  # mark/conf, class, visibility, z
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(",")
            if not 6 <= len(parts) <= 10:
                raise DataError(f"{path} line {number}: expected 6 to 10 comma-separated numbers, got {len(parts)}")
            try:
                row = [float(p) for p in parts]
            except ValueError:
                bad = next(p for p in parts if not _is_number(p))
                raise DataError(f"{path} line {number}: {bad.strip()!r} is not a number") from None
            if not np.isfinite(row[:6]).all():
                raise DataError(f"{path} line {number}: frame, id and box must be finite numbers")
            if row[0] < 1 or row[0] != int(row[0]):
                raise DataError(f"{path} line {number}: frame must be a positive integer, got {parts[0].strip()}")
            if row[4] < 0 or row[5] < 0:
                raise DataError(f"{path} line {number}: negative box width or height ({row[4]:g}, {row[5]:g})")
            rows.append(row + fill[len(row) - 6 :])
    return np.array(rows, np.float64).reshape(-1, 10)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
