"""Reading MOTChallenge ground-truth and result files (6 to 10 comma-separated numbers a line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid.io.mot import read_mot_rows as _read_rows


def read_mot_rows(path: str | Path, what: str = "MOT file") -> np.ndarray:
    """Rows (N, 10) float64 of a gt.txt (9 columns) or result file (10); missing columns become 1, 1, 1, -1.

    The parsing and its one-line errors are reid.io.mot's, shared with the detection files.
    """
    return _read_rows(path, what)[0]
