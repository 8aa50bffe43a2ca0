"""MOTChallenge reading and DeepSORT detection files, through the API and `reid extract --mot`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from reid.cli import cli
from reid.errors import DataError
from reid.inference.extractor import FeatureExtractor, boxes_from_tlwh
from reid.io.mot import deepsort_detections, read_detections, read_seqinfo

from .test_extractor import make_checkpoint

TOOL = Path(__file__).parents[1] / "tools" / "make_mot_sequence.py"


def _make_sequence():
    spec = importlib.util.spec_from_file_location("make_mot_sequence", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_sequence


@pytest.fixture(scope="module")
def sequence(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mot") / "SYNTH-01"
    return _make_sequence()(out, frames=6, width=160, height=96, people=3, false_positives=0.5, seed=3)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt")


def test_generated_sequence_has_the_mot_layout(sequence):
    info = read_seqinfo(sequence)
    assert (info.length, info.width, info.height, info.frame_rate) == (6, 160, 96, 25.0)
    assert all(info.frame_path(f).is_file() for f in range(1, 7))
    dets, lines = read_detections(sequence / "det" / "det.txt")
    assert dets.shape[1] == 10 and len(dets) == len(lines) > 0
    assert 2 not in set(dets[:, 0].astype(int))  # frame 2 has no detection by construction
    assert (dets[:, 1] == -1).all()


def test_deepsort_file_rows_are_mot_columns_then_features(sequence, checkpoint):
    extractor = FeatureExtractor(checkpoint, device="cpu", batch_size=4)
    out = deepsort_detections(extractor, sequence, progress=False)
    dets, _ = read_detections(sequence / "det" / "det.txt")
    order = np.argsort(dets[:, 0], kind="stable")
    assert out.shape == (len(dets), 10 + extractor.feature_dim) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :10], dets[order].astype(np.float32))  # columns kept as given, not clipped
    np.testing.assert_allclose(np.linalg.norm(out[:, 10:], axis=1), 1.0, rtol=1e-5)
    # independent reference: one frame at a time through from_frame
    from reid.data.image_io import read_image

    info = read_seqinfo(sequence)
    sorted_dets = dets[order]  # float64 boxes: the float32 copy in `out` may round across a pixel edge
    for frame in np.unique(dets[:, 0]).astype(int):
        rows = sorted_dets[:, 0] == frame
        expected = extractor.from_frame(read_image(info.frame_path(frame)), boxes_from_tlwh(sorted_dets[rows, 2:6]))
        np.testing.assert_allclose(out[rows, 10:], expected, atol=1e-5)


def _write_sequence(tmp_path: Path, det_text: str, frames: int = 2) -> Path:
    import cv2

    seq = tmp_path / "SEQ"
    (seq / "img1").mkdir(parents=True)
    (seq / "det").mkdir()
    for f in range(1, frames + 1):
        cv2.imwrite(str(seq / "img1" / f"{f:06d}.jpg"), np.full((40, 60, 3), 30 * f, np.uint8))
    (seq / "seqinfo.ini").write_text(
        f"[Sequence]\nname=SEQ\nimDir=img1\nframeRate=10\nseqLength={frames}\nimWidth=60\nimHeight=40\nimExt=.jpg\n"
    )
    (seq / "det" / "det.txt").write_text(det_text)
    return seq


def test_malformed_detection_lines_are_named(tmp_path):
    good = "1,-1,5,5,10,20,0.9,-1,-1,-1\n"
    cases = {
        "1,-1,5,5,10,20,0.9\n": "line 2: expected 10 comma-separated numbers, got 7",
        "1,-1,5,x5,10,20,0.9,-1,-1,-1\n": "line 2: 'x5' is not a number",
        "0,-1,5,5,10,20,0.9,-1,-1,-1\n": "line 2: frame must be a positive integer",
        "1,-1,5,5,-10,20,0.9,-1,-1,-1\n": "line 2: negative box width or height",
    }
    for i, (bad, message) in enumerate(cases.items()):
        path = tmp_path / f"det{i}.txt"
        path.write_text(good + bad)
        with pytest.raises(DataError, match=message):
            read_detections(path)
    path = tmp_path / "blank.txt"
    path.write_text("\n" + good + "\n\n" + good)
    dets, lines = read_detections(path)
    assert lines.tolist() == [2, 5]


def test_cli_writes_the_deepsort_file_and_reports_bad_lines(tmp_path, checkpoint):
    det = "2,-1,50,30,30,30,0.8,-1,-1,-1\n1,-1,-10,-5,20,20,0.9,-1,-1,-1\n1,-1,70,50,5,5,0.3,-1,-1,-1\n"
    seq = _write_sequence(tmp_path, det)
    out = tmp_path / "SEQ.npy"
    args = ["extract", "-m", str(checkpoint), "--mot", str(seq), "--out", str(out), "--device", "cpu", "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    array = np.load(out)
    assert array.shape[0] == 3 and array[:, 0].tolist() == [1, 1, 2]  # sorted by frame, file order within
    assert array[0, 2:6].tolist() == [-10, -5, 20, 20]  # a box reaching outside the frame is stored as given
    (seq / "det" / "det.txt").write_text(det + "3,-1,1,1,2\n")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "det.txt line 4: expected 10 comma-separated numbers, got 5" in str(
        result.exception
    )
    (seq / "det" / "det.txt").write_text(det + "7,-1,1,1,2,2,1,-1,-1,-1\n")
    result = CliRunner().invoke(cli, args)
    assert "det.txt line 4: frame 7 has no image" in str(result.exception)
    result = CliRunner().invoke(cli, args[:-5] + ["--out", str(tmp_path / "x.h5"), "--device", "cpu"])
    assert "ends in .npy" in result.output
