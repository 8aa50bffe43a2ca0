"""Scenes where appearance matters (tools/make_mot_sequence.py --turns / --returns), the fair tuning split and
the feature cache of tools/bench_track.py (reid.tracking.tuning)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from reid.tracking.runner import ModelEmbedder, TrackerOptions, make_embedder
from reid.tracking.tuning import APPEARANCE_GRID, MOTION_GRID, CachingEmbedder, grid_points, run_scene, tune

from .test_mot import _make_sequence
from .test_tracking import checkpoint, crossing  # noqa: F401  (fixtures)

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_track", TOOLS / "bench_track.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tracks(seq: Path) -> dict[int, np.ndarray]:
    """gt rows by person id: frame, x, y, w, h, visibility."""
    gt = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",", ndmin=2)
    return {int(i): gt[gt[:, 1] == i][:, [0, 2, 3, 4, 5, 8]] for i in np.unique(gt[:, 1])}


def test_default_scene_unchanged(tmp_path):
    """The new options draw their random numbers after everything else: the same arguments give the same
    files as before them (hashes written by the tool as it was at commit 1e6137a)."""
    out = _make_sequence()(tmp_path / "S", frames=12, width=240, height=140, people=2, seed=7, crossings=1, reentries=1)
    digest = {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in ("gt/gt.txt", "det/det.txt")}
    assert digest == {
        "gt/gt.txt": "e69a2daee13eecb54e0938af04cf65c96cccafc292b6cabd0cb431561e24eb43",
        "det/det.txt": "f959003b0183d6ff961bce23fa7c04e4ac9b2865236d4ce44b3f0e9608391eed",
    }


def test_turning_pair_turns_back_while_one_hides_the_other(tmp_path):
    args = dict(frames=40, width=240, height=140, people=0, seed=3, turns=1, false_positives=0.0)
    seq = _make_sequence()(tmp_path / "T", **args)
    a, b = (_tracks(seq)[i] for i in (1, 2))
    shared = np.intersect1d(a[:, 0], b[:, 0])
    ca = {f: x + w / 2 for f, x, _, w, _, _ in a}
    cb = {f: x + w / 2 for f, x, _, w, _, _ in b}
    gap = np.array([abs(ca[f] - cb[f]) for f in shared])
    meet = int(shared[np.argmin(gap)])
    assert gap.min() < 0.25 * a[:, 3].mean()  # the two boxes nearly coincide at the meeting frame
    # each one walks towards the other before the meeting and away from it after: both turned back
    for c, other in ((ca, cb), (cb, ca)):
        before = [f for f in range(meet - 6, meet - 1) if f in c]
        after = [f for f in range(meet + 2, meet + 7) if f in c]
        assert before and after
        side = np.sign(c[before[0]] - other[before[0]])
        assert side * (c[before[-1]] - c[before[0]]) < 0  # approaching
        assert side * (c[after[-1]] - c[after[0]]) > 0  # receding to the side it came from
        assert np.sign(c[after[-1]] - other[after[-1]]) == side  # it never crossed over
    # while they overlap one hides the other: the farther one is mostly hidden at the meeting
    vis = {int(f): v for f, *_, v in np.vstack([a, b])}
    hidden = min(a[a[:, 0] == meet][0, 5], b[b[:, 0] == meet][0, 5])
    assert hidden < 0.5 and max(vis.values()) == pytest.approx(1.0, abs=0.01)
    # deterministic for a seed
    again = _make_sequence()(tmp_path / "T2", **args)
    assert (again / "gt" / "gt.txt").read_bytes() == (seq / "gt" / "gt.txt").read_bytes()
    assert (again / "det" / "det.txt").read_bytes() == (seq / "det" / "det.txt").read_bytes()


def test_returning_person_stays_out_for_the_gap(tmp_path):
    seq = _make_sequence()(
        tmp_path / "R", frames=70, width=240, height=140, people=0, seed=1, returns=1, return_gap=(30, 30)
    )
    frames = _tracks(seq)[1][:, 0].astype(int)
    assert frames[0] == 1  # in the frame from the start
    gaps = np.diff(frames)
    out_at = int(frames[np.argmax(gaps)])
    assert 0.1 * 70 - 3 <= out_at <= 0.25 * 70 + 1  # leaves early
    # its box is out for `return_gap` frames; the person a few frames longer, as the figure is narrower than the
    # box (here ~35 px wide, moving 1.5-3 px a frame: up to ~12 frames more)
    assert 30 <= gaps.max() - 1 <= 30 + 12
    with pytest.raises(ValueError, match="return_gap"):
        _make_sequence()(tmp_path / "bad", frames=5, returns=1, return_gap=(50, 40))


def test_tuning_and_test_seeds_are_disjoint():
    bench = _bench()
    bench.check_split([0, 1, 2], [100, 101, 102])
    with pytest.raises(ValueError, match="share 1"):
        bench.check_split([0, 1, 2], [1, 100])


def test_tune_sees_only_the_tuning_scenes_and_picks_the_best(crossing, tmp_path, monkeypatch):  # noqa: F811
    import reid.tracking.tuning as tuning

    other = _make_sequence()(tmp_path / "O", frames=16, width=240, height=140, people=2, seed=9, crossings=1)
    candidates = [("none", {}), ("sort", {"n_init": 1, "max_age": 15}), ("motion", {"n_init": 2})]
    # the reference: each candidate's IDF1 computed directly on the tuning scenes
    expect = []
    for appearance, knobs in candidates:
        options = TrackerOptions(**knobs)
        expect.append(np.mean([run_scene(s, appearance, make_embedder(appearance), options, False)[1]["IDF1"]
                               for s in (crossing, other)]))  # fmt: skip
    seen = []
    real = tuning.run_scene
    monkeypatch.setattr(tuning, "run_scene", lambda seq, *a, **k: (seen.append(Path(seq)), real(seq, *a, **k))[1])
    best = tune([crossing, other], candidates, lambda seq: make_embedder("sort"))
    assert set(seen) == {crossing, other}
    assert best.idf1 == pytest.approx(max(expect))
    assert (best.appearance, best.knobs) == candidates[int(np.argmax(expect))]
    assert [s[2] for s in best.scores] == pytest.approx(expect)
    assert best.options == TrackerOptions(**best.knobs)


def test_grid_points():
    assert len(grid_points(MOTION_GRID)) == 3 * 4 * 2
    assert len(grid_points(APPEARANCE_GRID)) == 3 * 4 * 2 * 3 * 2
    assert grid_points({"a": (1, 2), "b": (True,)}) == [{"a": 1, "b": True}, {"a": 2, "b": True}]


def test_cached_features_give_the_same_tracks(checkpoint, crossing):  # noqa: F811
    from reid.tracking import tracking_extractor

    extractor = tracking_extractor(checkpoint, device="cpu", backend="torch")
    options = TrackerOptions(n_init=1, iou_all_tracks=True)
    plain, _ = run_scene(crossing, "model", ModelEmbedder(extractor), options)
    cached = CachingEmbedder(ModelEmbedder(extractor))
    first, _ = run_scene(crossing, "model", cached, options)  # fills the cache from the images
    calls = len(cached.store)
    replay, _ = run_scene(crossing, "model", cached, options, images=False)  # frames not decoded
    assert calls > 0 and len(cached.store) == calls
    np.testing.assert_array_equal(first.rows, plain.rows)
    np.testing.assert_array_equal(replay.rows, plain.rows)
    with pytest.raises(ValueError, match="no cached features"):
        cached(None, np.array([[1.0, 2.0, 3.0, 4.0]]))
