"""Detections -> features -> DeepSORT (`deep-sort-realtime`) -> MOTChallenge result rows.

Appearance modes: "model" embeds every detection with a re-ID checkpoint (one batched
forward pass per frame); "random" gives each detection a random unit vector (what
features without information buy); "none" switches DeepSORT's appearance cascade off
(`max_cosine_distance` -1 with a constant feature), leaving its IoU stage on Kalman-predicted
boxes. In DeepSORT that IoU stage only sees tracks updated in the previous frame, so
with "none" a track missed for two frames is not resumed. "motion" and "sort" are the
stronger motion-only baselines of `reid.tracking.motion` (Mahalanobis cascade; SORT's IoU
over all tracks), with the same constant feature.

Result rows are `frame, id, left, top, width, height, conf, -1, -1, -1`, written for the
confirmed tracks matched to a detection in that frame (their Kalman-corrected box), ids
renumbered 1, 2, ... in order of first output.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from reid.errors import DataError
from reid.io.atomic import atomic_path

from .adapter import embed_detections

APPEARANCES = ("model", "random", "none", "motion", "sort")
NO_APPEARANCE = ("none", "motion", "sort")  # a constant feature, the appearance gate closed


@dataclass(frozen=True)
class TrackerOptions:
    """DeepSORT's knobs (defaults of deep_sort_app for MOT16, cosine gate tuned for our features)."""

    max_age: int = 30
    n_init: int = 3
    max_cosine_distance: float = 0.3
    max_iou_distance: float = 0.7
    nn_budget: int | None = 100
    min_confidence: float = 0.0
    # with appearance: after the cascade, IoU over every unmatched track (not only those missed one frame)
    iou_all_tracks: bool = False


@dataclass
class Frame:
    """One frame: its 1-based index, the BGR image (None when not needed) and detections (N, 5) tlwh + score."""

    index: int
    image: np.ndarray | None
    detections: np.ndarray


@dataclass
class TrackingResult:
    rows: np.ndarray  # (M, 10) MOT result rows
    frames: int
    seconds: dict[str, float] = field(default_factory=dict)  # wall time: read / embed / track / total
    # (+ crops / forward, the two parts of embed, with appearance "model")
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # CPU time of this process, same keys
    detections: int = 0

    @property
    def num_tracks(self) -> int:
        return len(np.unique(self.rows[:, 1])) if len(self.rows) else 0

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds.get("total", 0.0), 1e-9)

    def summary(self) -> str:
        ms = {k: 1000 * v / max(self.frames, 1) for k, v in self.seconds.items()}
        cpu = {k: 1000 * v / max(self.frames, 1) for k, v in self.cpu_seconds.items()}
        steps = ", ".join(
            f"{name} {ms.get(key, 0):.1f} ms ({cpu.get(key, 0):.1f} CPU)"
            for name, key in (("read+detect", "read"), ("embed", "embed"), ("track", "track"))
        )
        if "forward" in cpu:
            steps += f" (embed CPU: crops {cpu['crops']:.1f}, forward {cpu['forward']:.1f})"
        return (
            f"{self.frames} frames, {self.detections} detections, {self.num_tracks} tracks, "
            f"{self.fps:.1f} frames/s; per frame: {steps}"
        )


Embedder = Callable[[np.ndarray | None, np.ndarray], np.ndarray]


class ModelEmbedder:
    """`embed_detections` of an extractor; `timings` adds up its crops / forward seconds (see the adapter)."""

    def __init__(self, extractor) -> None:
        self.extractor, self.timings = extractor, {}

    def __call__(self, image: np.ndarray | None, boxes: np.ndarray) -> np.ndarray:
        return embed_detections(self.extractor, image, boxes, "tlwh", timings=self.timings)


def make_embedder(appearance: str, extractor=None, seed: int = 0, dim: int = 128) -> Embedder:
    """(image, boxes tlwh (N, 4)) -> features (N, D) for an appearance mode (see the module docstring)."""
    if appearance == "model":
        if extractor is None:
            raise ValueError("appearance 'model' needs a FeatureExtractor")
        return ModelEmbedder(extractor)
    if appearance == "random":
        rng = np.random.default_rng(seed)

        def random_features(image, boxes):
            feats = rng.standard_normal((len(boxes), dim)).astype(np.float32)
            return feats / np.linalg.norm(feats, axis=1, keepdims=True)

        return random_features
    if appearance in NO_APPEARANCE:
        return lambda image, boxes: np.ones((len(boxes), 1), np.float32)
    raise ValueError(f"appearance must be one of {', '.join(APPEARANCES)}, got {appearance!r}")


def make_tracker(options: TrackerOptions, appearance: str):
    """A deep_sort_realtime DeepSort that takes outside embeddings (its own embedder is never built).

    With appearance "motion" or "sort" its association is swapped for a motion-only one; with features
    and `options.iou_all_tracks`, for the appearance cascade followed by SORT's IoU stage.
    """
    from deep_sort_realtime.deepsort_tracker import DeepSort

    if appearance not in APPEARANCES:
        raise ValueError(f"appearance must be one of {', '.join(APPEARANCES)}, got {appearance!r}")
    deepsort = DeepSort(
        max_age=options.max_age,
        n_init=options.n_init,
        max_iou_distance=options.max_iou_distance,
        max_cosine_distance=-1.0 if appearance in NO_APPEARANCE else options.max_cosine_distance,
        nn_budget=options.nn_budget,
        embedder=None,
    )
    if appearance in ("motion", "sort") or (options.iou_all_tracks and appearance not in NO_APPEARANCE):
        from .motion import use_motion_association

        use_motion_association(deepsort, appearance if appearance in NO_APPEARANCE else "appearance+sort")
    return deepsort


def track(
    frames: Iterable[Frame],
    embedder: Embedder,
    tracker,
    options: TrackerOptions = TrackerOptions(),
    total: int | None = None,
    progress: bool = True,
    on_frame: Callable[[Frame, np.ndarray], None] | None = None,
    desc: str = "track",
) -> TrackingResult:
    """Run `tracker` over `frames`; `on_frame(frame, rows)` sees each frame's output rows (rendering)."""
    out: list[list[float]] = []
    renumber: dict[int, int] = {}
    seconds = {"read": 0.0, "embed": 0.0, "track": 0.0}
    cpu = dict(seconds)
    count = dets_seen = 0
    start = tick = time.perf_counter()
    cpu_start = cpu_tick = time.process_time()
    bar = tqdm(total=total, desc=desc, unit="frame", disable=not progress, leave=False)
    for frame in frames:
        now, cpu_now = time.perf_counter(), time.process_time()
        seconds["read"] += now - tick
        cpu["read"] += cpu_now - cpu_tick
        dets = frame.detections
        dets = dets[(dets[:, 2] > 0) & (dets[:, 3] > 0) & (dets[:, 4] >= options.min_confidence)]
        feats = embedder(frame.image, dets[:, :4])
        after_embed, cpu_after_embed = time.perf_counter(), time.process_time()
        raw = [(d[:4].tolist(), float(d[4]), "person") for d in dets]
        tracks = tracker.update_tracks(raw, embeds=list(feats))
        rows = []
        for t in tracks:
            if not t.is_confirmed() or t.time_since_update > 0:
                continue
            tid = renumber.setdefault(int(t.track_id), len(renumber) + 1)
            conf = t.get_det_conf()
            rows.append([frame.index, tid, *t.to_ltwh().tolist(), 1.0 if conf is None else conf, -1, -1, -1])
        out.extend(rows)
        tick, cpu_tick = time.perf_counter(), time.process_time()
        seconds["embed"] += after_embed - now
        seconds["track"] += tick - after_embed
        cpu["embed"] += cpu_after_embed - cpu_now
        cpu["track"] += cpu_tick - cpu_after_embed
        if on_frame is not None:  # rendering counts as output time, in "total" only
            on_frame(frame, np.array(rows, np.float64).reshape(-1, 10))
            tick, cpu_tick = time.perf_counter(), time.process_time()
        count += 1
        dets_seen += len(dets)
        bar.update(1)
    bar.close()
    seconds["total"] = time.perf_counter() - start
    cpu["total"] = time.process_time() - cpu_start
    stages = getattr(embedder, "timings", None) or {}
    for key in ("crops", "forward"):
        if key in stages:
            seconds[key], cpu[key] = stages[key], stages[f"{key}_cpu"]
    return TrackingResult(np.array(out, np.float64).reshape(-1, 10), count, seconds, cpu, dets_seen)


def write_results(rows: np.ndarray, path: str | Path) -> Path:
    """MOTChallenge result file (frame, id, x, y, w, h, conf, -1, -1, -1), written atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        np.savetxt(tmp, np.asarray(rows).reshape(-1, 10), fmt="%d,%d,%.2f,%.2f,%.2f,%.2f,%.3f,%d,%d,%d")
    return path


def group_by_frame(dets: np.ndarray) -> dict[int, np.ndarray]:
    """MOT rows (N, >= 7) -> {frame: (n, 5) tlwh + score}."""
    frames = dets[:, 0].astype(np.int64)
    return {int(f): dets[frames == f][:, [2, 3, 4, 5, 6]] for f in np.unique(frames)}


def mot_frames(seq_dir: str | Path, detections: str | Path | None = None, need_images: bool = True):
    """(SequenceInfo, frame iterator) of a MOTChallenge sequence; every frame 1..seqLength is visited.

    A frame with detections but no image is a DataError naming the detection file's line.
    """
    from reid.data.image_io import read_image
    from reid.io.mot import read_detections, read_seqinfo

    seq_dir = Path(seq_dir)
    info = read_seqinfo(seq_dir)
    det_path = Path(detections) if detections else seq_dir / "det" / "det.txt"
    dets, lines = read_detections(det_path)
    beyond = dets[:, 0] > info.length
    if beyond.any():
        line = int(lines[np.flatnonzero(beyond)[0]])
        raise DataError(f"{det_path} line {line}: frame {int(dets[beyond][0, 0])} is past seqLength {info.length}")
    by_frame = group_by_frame(dets)
    first_line = {int(f): int(lines[np.flatnonzero(dets[:, 0] == f)[0]]) for f in by_frame}

    def frames() -> Iterator[Frame]:
        for index in range(1, info.length + 1):
            boxes = by_frame.get(index, np.zeros((0, 5)))
            image = None
            path = info.frame_path(index)
            if need_images:
                if path.is_file():
                    image = read_image(path)
                elif len(boxes):
                    raise DataError(f"{det_path} line {first_line[index]}: frame {index} has no image {path}")
            yield Frame(index, image, boxes)

    return info, frames()


__all__ = [
    "APPEARANCES",
    "NO_APPEARANCE",
    "Frame",
    "ModelEmbedder",
    "TrackerOptions",
    "TrackingResult",
    "make_embedder",
    "make_tracker",
    "mot_frames",
    "track",
    "write_results",
]
