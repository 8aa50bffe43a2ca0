"""reid.tracking.report: the det file `reid track --save-detections` writes reads back as the same boxes;
the metrics JSON holds the run's numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reid.io.mot import read_detections
from reid.tracking.report import recording, write_detection_file, write_metrics
from reid.tracking.runner import Frame, TrackingResult


def test_recorded_detections_round_trip_through_a_mot_det_file(tmp_path):
    dets = {
        1: np.array([[10.0, 20.0, 30.0, 60.0, 0.9], [5.5, 6.25, 7.0, 8.0, 0.12345]]),
        2: np.zeros((0, 5)),  # a frame without detections writes no line
        3: np.array([[1.0, 2.0, 3.0, 4.0, 1.0]]),
    }
    frames = [Frame(i, None, d) for i, d in dets.items()]
    saved: list = []
    assert [f.index for f in recording(iter(frames), saved)] == [1, 2, 3]  # passed through unchanged
    path = tmp_path / "det.txt"
    assert write_detection_file(saved, path) == 3
    rows, lines = read_detections(path)
    assert rows[:, 0].tolist() == [1, 1, 3] and lines.tolist() == [1, 2, 3] and (rows[:, [1, 7, 8, 9]] == -1).all()
    expected = np.concatenate([dets[1], dets[3]])
    np.testing.assert_allclose(rows[:, 2:7], expected, atol=0.005 + 1e-9)  # 2 decimals for boxes, 4 for scores
    assert rows[1, 6] == pytest.approx(0.1235, abs=1e-9)
    assert write_detection_file([], tmp_path / "none.txt") == 0 and (tmp_path / "none.txt").read_text() == ""


def test_metrics_json_is_written_atomically_with_the_record(tmp_path):
    result = TrackingResult(np.zeros((0, 10)), frames=4, seconds={"total": 2.0})
    record = {"appearance": "none", "metrics": {"HOTA": 0.5}, "frames_per_s": result.fps}
    path = write_metrics(record, tmp_path / "m.json")
    assert json.loads(path.read_text()) == {"appearance": "none", "metrics": {"HOTA": 0.5}, "frames_per_s": 2.0}
    assert path.read_text().endswith("}\n") and [p.name for p in tmp_path.iterdir()] == ["m.json"]
