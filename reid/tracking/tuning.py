"""Fair tuning of tracker knobs: a grid search on tuning scenes, each scene's features computed once.

A detection's features do not depend on the tracker's knobs, so `CachingEmbedder` computes them
on the first pass over a scene and replays them on every later pass (no image decoding, no
network): a grid over n_init / max_age / gates costs tracker time only. `tune` returns the
knobs with the best mean IDF1 over the scenes it is given; report them on other scenes
(tools/bench_track.py keeps its tuning and test seeds disjoint).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .io import read_mot_rows
from .metrics import evaluate_tracks
from .runner import Embedder, TrackerOptions, TrackingResult, make_tracker, mot_frames, track

# knobs of the motion-only baselines; appearance adds its gate and SORT's IoU stage after the cascade
MOTION_GRID: dict[str, tuple] = {"n_init": (1, 2, 3), "max_age": (15, 30, 60, 120), "max_iou_distance": (0.7, 0.9)}
APPEARANCE_GRID: dict[str, tuple] = {
    **MOTION_GRID,
    "max_cosine_distance": (0.2, 0.3, 0.4),
    "iou_all_tracks": (False, True),
}


def grid_points(grid: dict[str, Sequence]) -> list[dict]:
    """Every combination of the grid's values, as keyword dicts for `TrackerOptions`."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


class CachingEmbedder:
    """An embedder that remembers the features of each frame's box set and replays them.

    The key is the exact box array (float64 bytes), which the runner passes unchanged for a given
    scene and `min_confidence`; a replay without an image (frames not decoded) of boxes never seen
    is a ValueError, not a silent recomputation.
    """

    def __init__(self, embedder: Embedder) -> None:
        self.embedder, self.store = embedder, {}

    def __call__(self, image: np.ndarray | None, boxes: np.ndarray) -> np.ndarray:
        key = np.ascontiguousarray(boxes, np.float64).tobytes()
        if key not in self.store:
            if image is None:
                raise ValueError(f"CachingEmbedder: no cached features for {len(boxes)} boxes and no image")
            self.store[key] = self.embedder(image, boxes)
        return self.store[key]

    @property
    def timings(self) -> dict:
        """The wrapped embedder's crops / forward seconds (spent on the first pass only)."""
        return getattr(self.embedder, "timings", {})

    @property
    def filled(self) -> bool:
        return bool(self.store)


def run_scene(
    seq: Path, appearance: str, embedder: Embedder, options: TrackerOptions, images: bool = True
) -> tuple[TrackingResult, dict]:
    """Track one MOT scene (its det.txt) and score it against its gt.txt."""
    info, frames = mot_frames(seq, need_images=images)
    tracker = make_tracker(options, appearance)
    result = track(frames, embedder, tracker, options, total=info.length, progress=False)
    return result, evaluate_tracks(read_mot_rows(seq / "gt" / "gt.txt"), result.rows, info.length)


@dataclass
class Tuned:
    """The winner of a grid search: appearance mode, its knobs and options, mean IDF1 on the tuning scenes,
    and every candidate's (appearance, knobs, mean IDF1)."""

    appearance: str
    knobs: dict
    options: TrackerOptions
    idf1: float
    scores: list[tuple[str, dict, float]]

    def label(self) -> str:
        return f"{self.appearance} " + " ".join(f"{k}={v}" for k, v in self.knobs.items())


def needs_images(appearance: str, embedder: Embedder) -> bool:
    """Whether frames must be decoded: only to compute model features not cached yet."""
    if isinstance(embedder, CachingEmbedder):
        return not embedder.filled
    return appearance == "model"


def tune(
    seqs: Sequence[Path],
    candidates: Sequence[tuple[str, dict]],
    embedder_for: Callable[[Path], Embedder],
    base: TrackerOptions = TrackerOptions(),
    progress: Callable[[int, int], None] | None = None,
) -> Tuned:
    """The (appearance, knobs) of `candidates` with the best mean IDF1 over `seqs` (first wins ties).

    `embedder_for(seq)` gives the scene's embedder; a filled `CachingEmbedder` lets frames go undecoded.
    """
    if not seqs or not candidates:
        raise ValueError("tune: need at least one scene and one candidate")
    scores, best = [], None
    for i, (appearance, knobs) in enumerate(candidates):
        options = replace(base, **knobs)
        idf1s = []
        for seq in seqs:
            embedder = embedder_for(seq)
            idf1s.append(run_scene(seq, appearance, embedder, options, needs_images(appearance, embedder))[1]["IDF1"])
        mean = float(np.mean(idf1s))
        scores.append((appearance, knobs, mean))
        if best is None or mean > best.idf1:
            best = Tuned(appearance, knobs, options, mean, scores)
        if progress is not None:
            progress(i + 1, len(candidates))
    return best


__all__ = [
    "APPEARANCE_GRID",
    "MOTION_GRID",
    "CachingEmbedder",
    "Tuned",
    "grid_points",
    "needs_images",
    "run_scene",
    "tune",
]
