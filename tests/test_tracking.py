"""reid.tracking: TrackEval metrics, the per-frame adapter, DeepSORT runs through the API and `reid track`."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from reid.cli import cli
from reid.errors import DataError
from reid.inference.extractor import FeatureExtractor
from reid.tracking import embed_detections, to_xyxy, tracking_extractor
from reid.tracking.io import read_mot_rows
from reid.tracking.metrics import evaluate_tracks

from .test_extractor import make_checkpoint
from .test_mot import _make_sequence


@pytest.fixture(scope="module")
def crossing(tmp_path_factory) -> Path:
    """24 frames, 2 random walkers + one crossing pair, with gt."""
    out = tmp_path_factory.mktemp("mot") / "CROSS-T"
    return _make_sequence()(
        out,
        frames=24,
        width=240,
        height=140,
        people=2,
        false_positives=0.3,
        seed=5,
        crossings=1,
        min_visibility=0.4,
        empty_frame=False,
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt")


def _trackeval_files(tmp: Path, gt: np.ndarray, tracks: np.ndarray, frames: int) -> dict:
    """TrackEval's own file-based MOTChallenge evaluation of one sequence (the reference)."""
    import trackeval

    (tmp / "gt" / "S" / "gt").mkdir(parents=True)
    (tmp / "tr" / "mine" / "data").mkdir(parents=True)
    np.savetxt(tmp / "gt" / "S" / "gt" / "gt.txt", gt, fmt="%d,%d,%.2f,%.2f,%.2f,%.2f,%d,%d,%.3f")
    np.savetxt(tmp / "tr" / "mine" / "data" / "S.txt", tracks, fmt="%d,%d,%.2f,%.2f,%.2f,%.2f,%.3f,%d,%d,%d")
    quiet = {"PRINT_CONFIG": False}
    evaluator = trackeval.Evaluator(
        {
            "PRINT_RESULTS": False,
            "PRINT_CONFIG": False,
            "TIME_PROGRESS": False,
            "OUTPUT_SUMMARY": False,
            "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False,
            "LOG_ON_ERROR": None,
            "DISPLAY_LESS_PROGRESS": True,
        }
    )
    dataset = trackeval.datasets.MotChallenge2DBox(
        {
            "GT_FOLDER": str(tmp / "gt"),
            "TRACKERS_FOLDER": str(tmp / "tr"),
            "SEQ_INFO": {"S": frames},
            "SKIP_SPLIT_FOL": True,
            "PRINT_CONFIG": False,
            "OUTPUT_FOLDER": str(tmp / "out"),
        }
    )
    metrics = [trackeval.metrics.HOTA(quiet), trackeval.metrics.CLEAR(quiet), trackeval.metrics.Identity(quiet)]
    res, _ = evaluator.evaluate([dataset], metrics)
    return res["MotChallenge2DBox"]["mine"]["S"]["pedestrian"]


def test_metrics_equal_trackeval_file_evaluation(crossing, tmp_path):
    from reid.tracking.runner import TrackerOptions, make_embedder, make_tracker, mot_frames, track

    gt = read_mot_rows(crossing / "gt" / "gt.txt")[:, :9]
    gt[::7, 6] = 0  # some zero-marked (ignored) boxes
    gt[3::11, 7] = 8  # some distractors: tracker boxes on them are dropped
    info, frames = mot_frames(crossing, need_images=False)
    result = track(frames, make_embedder("none"), make_tracker(TrackerOptions(), "none"), progress=False)
    assert len(result.rows) > 20
    ours = evaluate_tracks(gt, result.rows, info.length)
    ref = _trackeval_files(tmp_path, gt, result.rows, info.length)
    assert ours["HOTA"] == pytest.approx(float(np.mean(ref["HOTA"]["HOTA"])), abs=1e-9)
    assert ours["AssA"] == pytest.approx(float(np.mean(ref["HOTA"]["AssA"])), abs=1e-9)
    assert ours["IDF1"] == pytest.approx(ref["Identity"]["IDF1"], abs=1e-9)
    assert ours["MOTA"] == pytest.approx(ref["CLEAR"]["MOTA"], abs=1e-9)
    assert ours["IDSW"] == ref["CLEAR"]["IDSW"]


def test_metrics_by_hand():
    # one person, 10 frames; the tracker switches id at frame 6: IDF1 = 2*5/(10+10) = 0.5, one ID switch
    gt = np.array([[f, 1, 10 * f, 20, 30, 60, 1, 1, 1] for f in range(1, 11)], float)
    tracks = gt.copy()
    tracks[5:, 1] = 2
    m = evaluate_tracks(gt, tracks)
    assert (m["IDF1"], m["IDSW"], m["MOTA"], m["DetA"]) == (0.5, 1, 0.9, 1.0)
    assert m["AssA"] == pytest.approx(0.5)  # each TP's association IoU is 5 / (5 + 5 + 0)
    perfect = evaluate_tracks(gt, gt)
    assert perfect["HOTA"] == perfect["IDF1"] == 1.0 and perfect["IDSW"] == 0


def test_embed_detections_is_one_forward_pass_of_from_frame(checkpoint):
    extractor = FeatureExtractor(checkpoint, device="cpu", batch_size=16, backend="torch")  # a torch module to hook
    frame = np.random.default_rng(0).integers(0, 255, (120, 200, 3), dtype=np.uint8)
    tlwh = np.array([[10, 5, 30, 60], [50, 20, 25, 70], [-5, 50, 40, 90], [150, 10, 40, 80]], float)
    calls = []
    hook = extractor.model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    feats = embed_detections(extractor, frame, tlwh)
    hook.remove()
    assert calls == [4]  # all crops of the frame in one batch
    np.testing.assert_allclose(feats, extractor.from_frame(frame, to_xyxy(tlwh)), atol=1e-6)
    xyxy = np.concatenate([tlwh[:, :2], tlwh[:, :2] + tlwh[:, 2:]], 1)
    cxcywh = np.concatenate([tlwh[:, :2] + tlwh[:, 2:] / 2, tlwh[:, 2:]], 1)
    np.testing.assert_allclose(embed_detections(extractor, frame, xyxy, "xyxy"), feats, atol=1e-6)
    np.testing.assert_allclose(embed_detections(extractor, frame, cxcywh, "cxcywh"), feats, atol=1e-6)
    assert embed_detections(extractor, frame, np.zeros((0, 4))).shape == (0, extractor.feature_dim)
    with pytest.raises(DataError, match="expected an \\(N, 4\\) array"):
        embed_detections(extractor, frame, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="box_format"):
        embed_detections(extractor, frame, tlwh, "yolo")


def test_the_ten_line_deepsort_example_runs(checkpoint, crossing):
    """The example of docs/tracking.md, line for line, on a generated sequence."""
    from deep_sort_realtime.deepsort_tracker import DeepSort

    from reid.tracking.runner import mot_frames

    video = ((f.image, f.detections[:, :4], f.detections[:, 4]) for f in mot_frames(crossing)[1])
    # --- docs/tracking.md example ---
    extractor = tracking_extractor(checkpoint)  # onnxruntime on the CPU when installed, else torch
    tracker = DeepSort(embedder=None, max_cosine_distance=0.3)
    for frame, boxes, scores in video:  # boxes (N, 4): left, top, width, height
        feats = embed_detections(extractor, frame, boxes)  # (N, D), one forward pass
        tracks = tracker.update_tracks([(b, s, "person") for b, s in zip(boxes, scores)], embeds=feats)
        for t in tracks:
            if t.is_confirmed() and t.time_since_update == 0:
                print(t.track_id, t.to_ltwh())
    # --- end ---
    assert any(t.is_confirmed() for t in tracks) and extractor.backend == "onnxruntime"


def test_reid_track_on_a_sequence_with_ground_truth(checkpoint, crossing, tmp_path):
    out = tmp_path / "tracks.txt"
    args = ["track", "-m", str(checkpoint), "--mot", str(crossing), "--out", str(out), "--quiet", "--device", "cpu"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "frames/s" in result.output and "metrics (TrackEval): HOTA" in result.output
    rows = read_mot_rows(out)
    assert rows.shape[1] == 10 and set(np.unique(rows[:, 1])) == set(range(1, len(np.unique(rows[:, 1])) + 1))
    record = json.loads(Path(f"{out}.metrics.json").read_text())
    gt = read_mot_rows(crossing / "gt" / "gt.txt")
    assert record["metrics"] == pytest.approx(evaluate_tracks(gt, rows, 24))
    base = CliRunner().invoke(
        cli, ["track", "--mot", str(crossing), "--appearance", "none", "--quiet", "--out", str(tmp_path / "iou.txt")]
    )
    assert base.exit_code == 0, base.output


def _bad_sequence(tmp_path: Path, crossing: Path, det_text: str) -> Path:
    seq = tmp_path / "BAD"
    seq.mkdir()
    (seq / "seqinfo.ini").write_text((crossing / "seqinfo.ini").read_text())
    (seq / "img1").symlink_to(crossing / "img1")
    (seq / "det").mkdir()
    (seq / "det" / "det.txt").write_text(det_text)
    return seq


@pytest.mark.parametrize(
    ("det_text", "message"),
    [
        ("1,-1,1,2,3,4,0.9,-1,-1,-1\n1,-1,1,2,3\n", "det.txt line 2: expected 10 comma-separated numbers, got 5"),
        ("1,-1,1,2,x,4,0.9,-1,-1,-1\n", "det.txt line 1: 'x' is not a number"),
        ("99,-1,1,2,3,4,0.9,-1,-1,-1\n", "det.txt line 1: frame 99 is past seqLength 24"),
    ],
)
def test_reid_track_bad_inputs_are_one_line_errors(crossing, tmp_path, det_text, message):
    seq = _bad_sequence(tmp_path, crossing, det_text)
    result = CliRunner().invoke(cli, ["track", "--mot", str(seq), "--appearance", "none", "--out", str(tmp_path / "t")])
    assert result.exit_code != 0 and message in str(result.exception or result.output)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "t.txt"], "give exactly one of --mot SEQUENCE_DIR or --video FILE"),
        (["--mot", "SEQ", "--out", "t.txt"], "--appearance model needs -m CHECKPOINT"),
        (["--video", "v.mp4", "--appearance", "none", "--out", "t.txt"], "exactly one of --detections FILE or"),
        (["--video", "v.mp4", "--detector", "hog", "--appearance", "none", "--out", "t"], "v.mp4: file not found"),
    ],
)
def test_reid_track_option_mistakes(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["track", *args])
    assert result.exit_code != 0
    assert message in (result.output + str(result.exception))


def test_reid_track_video_with_detections_renders(crossing, tmp_path, checkpoint):
    from reid.io.mot import read_detections
    from reid.tracking.video import HogDetector

    video = tmp_path / "in.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (240, 140))
    for f in range(1, 25):
        writer.write(cv2.imread(str(crossing / "img1" / f"{f:06d}.jpg")))
    writer.release()
    render = tmp_path / "out.mp4"
    args = [
        "track",
        "-m",
        str(checkpoint),
        "--video",
        str(video),
        "--detections",
        str(crossing / "det" / "det.txt"),
        "--out",
        str(tmp_path / "t.txt"),
        "--render",
        str(render),
        "--quiet",
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    cap = cv2.VideoCapture(str(render))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 24 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 240
    assert len(read_mot_rows(tmp_path / "t.txt")) > 0
    assert not list(tmp_path.glob(".*partial*"))
    dets = HogDetector(upscale=1.0)(cv2.imread(str(crossing / "img1" / "000001.jpg")))
    assert dets.ndim == 2 and dets.shape[1] == 5
    assert read_detections(crossing / "det" / "det.txt")[0].shape[1] == 10


def test_runner_random_and_none_need_no_model(crossing):
    from reid.tracking.runner import TrackerOptions, make_embedder, make_tracker, mot_frames, track

    for appearance in ("none", "random"):
        info, frames = mot_frames(crossing, need_images=False)
        result = track(frames, make_embedder(appearance), make_tracker(TrackerOptions(), appearance), progress=False)
        assert result.frames == info.length and result.num_tracks >= 1


def test_exactly_one_opencv_distribution_provides_cv2():
    """make install keeps one OpenCV (contrib-headless, with HOG); the tracker libraries declare opencv-python."""
    from importlib.metadata import distributions

    site = Path(cv2.__file__).resolve().parents[1]
    names = {
        d.metadata["Name"].lower()
        for d in distributions(path=[str(site)])
        if d.metadata["Name"] and d.metadata["Name"].lower().startswith("opencv")
    }
    assert names == {"opencv-contrib-python-headless"}
    assert hasattr(cv2, "HOGDescriptor")
