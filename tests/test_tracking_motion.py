"""Motion-only baselines (reid.tracking.motion), the tracking backends and per-stage timings of the adapter."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from reid.cli import cli
from reid.tracking import embed_detections, tracking_extractor
from reid.tracking.adapter import resolve_backend
from reid.tracking.runner import Frame, TrackerOptions, make_embedder, make_tracker, track

from .test_tracking import checkpoint, crossing  # noqa: F401  (fixtures)


def _walker_with_gap(gap: range) -> list[Frame]:
    """One person walking right at 4 px/frame for 30 frames, undetected during `gap`."""
    frames = []
    for f in range(1, 31):
        dets = np.zeros((0, 5)) if f in gap else np.array([[20.0 + 4 * f, 40.0, 40.0, 100.0, 0.9]])
        frames.append(Frame(f, None, dets))
    return frames


def _ids(appearance: str, frames: list[Frame]) -> set[int]:
    result = track(frames, make_embedder(appearance), make_tracker(TrackerOptions(), appearance), progress=False)
    return set(result.rows[:, 1].astype(int))


def test_motion_baselines_resume_a_track_that_deepsort_without_features_drops():
    frames = _walker_with_gap(range(11, 14))  # three frames without a detection
    # DeepSORT's IoU stage only sees tracks updated in the previous frame: a new id after the gap
    assert _ids("none", frames) == {1, 2}
    # the Mahalanobis cascade and SORT's IoU on the predicted box pick the same person up again
    assert _ids("motion", frames) == {1}
    assert _ids("sort", frames) == {1}
    # without a gap every mode keeps one id
    assert all(_ids(a, _walker_with_gap(range(0))) == {1} for a in ("none", "motion", "sort"))


def test_motion_baselines_keep_the_deepsort_settings():
    from reid.tracking.motion import MahalanobisTracker, SortTracker

    options = TrackerOptions(max_age=7, n_init=2, max_iou_distance=0.5)
    for appearance, cls in (("motion", MahalanobisTracker), ("sort", SortTracker)):
        tracker = make_tracker(options, appearance).tracker
        assert type(tracker) is cls
        assert (tracker.max_age, tracker.n_init, tracker.max_iou_distance) == (7, 2, 0.5)
    with pytest.raises(ValueError, match="appearance must be one of"):
        make_tracker(options, "kalman")


def test_iou_stage_over_all_tracks_resumes_a_track_whose_appearance_changed():
    """Across a 3-frame gap the person's feature turns orthogonal (a turn, an occlusion): the appearance
    cascade cannot match it and DeepSORT's IoU stage no longer sees the track; SORT's stage after the
    cascade (iou_all_tracks) resumes it by the Kalman-predicted box."""
    from reid.tracking.motion import AppearanceThenSortTracker

    before, after = np.eye(8)[0], np.eye(8)[1]

    def embedder(image, boxes):  # the walker's x passes 70 only after the gap
        return np.array([before if x < 70 else after for x in boxes[:, 0]]).reshape(len(boxes), 8)

    frames = _walker_with_gap(range(11, 14))
    ids = {}
    for iou_all in (False, True):
        options = TrackerOptions(iou_all_tracks=iou_all)
        tracker = make_tracker(options, "model")
        assert (type(tracker.tracker) is AppearanceThenSortTracker) == iou_all
        ids[iou_all] = set(track(frames, embedder, tracker, options, progress=False).rows[:, 1].astype(int))
    assert ids == {False: {1, 2}, True: {1}}
    # no appearance change: the cascade alone resumes it, with or without the extra stage
    same = {
        iou_all: set(
            track(
                frames,
                lambda im, b: np.tile(before, (len(b), 1)),
                make_tracker(TrackerOptions(iou_all_tracks=iou_all), "model"),
                progress=False,
            )
            .rows[:, 1]
            .astype(int)
        )
        for iou_all in (False, True)
    }
    assert same == {False: {1}, True: {1}}


def test_resolve_backend():
    assert resolve_backend("torch", "cpu") == "torch"
    assert resolve_backend("auto", "cpu") == "onnxruntime"  # onnxruntime is a test dependency
    assert resolve_backend("auto", "cuda") == "torch"
    with pytest.raises(ValueError, match="backend must be one of auto, torch, onnxruntime"):
        resolve_backend("tensorrt", "cpu")


def test_backends_agree_and_stage_times_add_up(checkpoint):  # noqa: F811
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 200, 3), np.uint8)
    boxes = np.array([[10, 5, 30, 70], [60, 20, 25, 60], [150, 50, 60, 90], [-5, -5, 12, 20]], float)
    torch_ex = tracking_extractor(checkpoint, device="cpu", backend="torch")
    ort_ex = tracking_extractor(checkpoint, device="cpu", backend="auto")
    assert (torch_ex.backend, ort_ex.backend) == ("torch", "onnxruntime")
    timings: dict[str, float] = {}
    ours = embed_detections(ort_ex, frame, boxes, timings=timings)
    reference = torch_ex.from_frame(frame, boxes, box_format="tlwh")  # the extractor's own crop path
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    np.testing.assert_allclose(embed_detections(torch_ex, frame, boxes), reference, atol=1e-6)
    rgb = np.ascontiguousarray(frame[:, :, ::-1])
    np.testing.assert_allclose(embed_detections(torch_ex, rgb, boxes, color="rgb"), reference, atol=1e-6)
    assert set(timings) == {"crops", "forward", "crops_cpu", "forward_cpu"}
    assert all(v >= 0 for v in timings.values()) and timings["forward"] > 0
    assert embed_detections(ort_ex, frame, np.zeros((0, 4)), timings=timings).shape == (0, ort_ex.feature_dim)


def test_track_reports_crops_and_forward(checkpoint, crossing):  # noqa: F811
    from reid.tracking.runner import mot_frames

    info, frames = mot_frames(crossing)
    extractor = tracking_extractor(checkpoint, device="cpu", backend="torch")
    result = track(frames, make_embedder("model", extractor), make_tracker(TrackerOptions(), "model"), progress=False)
    assert {"crops", "forward"} <= set(result.seconds) and {"crops", "forward"} <= set(result.cpu_seconds)
    assert result.seconds["crops"] + result.seconds["forward"] <= result.seconds["embed"] + 1e-6
    assert "forward" in result.summary()


def test_reid_track_motion_baselines_and_backend(checkpoint, crossing, tmp_path):  # noqa: F811
    for appearance in ("motion", "sort"):
        out = tmp_path / f"{appearance}.txt"
        args = ["track", "--mot", str(crossing), "--appearance", appearance, "--quiet", "--out", str(out)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "metrics (TrackEval): HOTA" in result.output
    args = ["track", "-m", str(checkpoint), "--mot", str(crossing), "--backend", "onnxruntime", "--device", "cpu"]
    result = CliRunner().invoke(cli, [*args, "--quiet", "--max-frames", "5", "--out", str(tmp_path / "o.txt")])
    assert result.exit_code == 0, result.output
    assert "[onnxruntime]" in result.output
    result = CliRunner().invoke(
        cli, [*args, "--quiet", "--max-frames", "5", "--iou-all-tracks", "--out", str(tmp_path / "s.txt")]
    )
    assert result.exit_code == 0, result.output
    bad = CliRunner().invoke(cli, [*args, "--max-iou-distance", "0", "--out", str(tmp_path / "b.txt")])
    assert bad.exit_code != 0 and "--max-iou-distance must be in (0, 1], got 0.0" in bad.output
    assert "Traceback" not in bad.output
