"""Tracking metrics (HOTA, IDF1, MOTA, ID switches) computed by TrackEval's own metric classes.

TrackEval (the MOTChallenge evaluator) reads sequences from a fixed folder layout; here the
same preprocessing as its `MotChallenge2DBox` is done in memory and its `HOTA`, `CLEAR`
and `Identity` classes score the result, so the numbers are TrackEval's (tests compare
them with TrackEval's file-based evaluator):

- ground-truth rows with mark (column 7) 0 or a class (column 8) other than 1 are dropped;
- tracker boxes matched (IoU >= 0.5, Hungarian) to a ground-truth box of a distractor class
  (2 person on vehicle, 7 static person, 8 distractor, 12 reflection) are dropped;
- similarity is box IoU; ids are relabelled 0..n-1 per sequence.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
from scipy.optimize import linear_sum_assignment

DISTRACTOR_CLASSES = (2, 7, 8, 12)
SUMMARY = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW", "IDs", "GT_IDs", "Frag")


def _trackeval():
    with contextlib.redirect_stdout(io.StringIO()):  # it prints about optional datasets it cannot import
        import trackeval
    return trackeval


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU (N, M) of tlwh boxes a (N, 4) and b (M, 4)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax1, ay1 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx1, by1 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1[:, None], bx1[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay1[:, None], by1[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.maximum(union, np.finfo(float).eps), 0.0)


def _sequence_data(gt: np.ndarray, tracks: np.ndarray, num_frames: int) -> dict:
    """TrackEval's preprocessed sequence dict from MOT rows (frame, id, x, y, w, h, mark, class, ...)."""
    gt = np.asarray(gt, np.float64).reshape(len(gt), -1)
    tracks = np.asarray(tracks, np.float64).reshape(len(tracks), -1)
    mark = gt[:, 6] if gt.shape[1] > 6 else np.ones(len(gt))
    cls = gt[:, 7] if gt.shape[1] > 7 else np.ones(len(gt))
    gt_ids_t, tr_ids_t, sims = [], [], []
    for t in range(1, num_frames + 1):
        g, r = gt[gt[:, 0] == t], tracks[tracks[:, 0] == t]
        g_mark, g_cls = mark[gt[:, 0] == t], cls[gt[:, 0] == t]
        sim = box_iou(g[:, 2:6], r[:, 2:6])
        if len(g) and len(r):
            scores = np.where(sim < 0.5 - np.finfo(float).eps, 0.0, sim)
            rows, cols = linear_sum_assignment(-scores)
            ok = scores[rows, cols] > np.finfo(float).eps
            drop = cols[ok][np.isin(g_cls[rows[ok]], DISTRACTOR_CLASSES)]
            r, sim = np.delete(r, drop, axis=0), np.delete(sim, drop, axis=1)
        keep = (g_mark != 0) & (g_cls == 1)
        gt_ids_t.append(g[keep, 1].astype(np.int64))
        tr_ids_t.append(r[:, 1].astype(np.int64))
        sims.append(sim[keep])
    gt_unique = np.unique(np.concatenate(gt_ids_t)) if gt_ids_t else np.zeros(0, np.int64)
    tr_unique = np.unique(np.concatenate(tr_ids_t)) if tr_ids_t else np.zeros(0, np.int64)
    return {
        "num_timesteps": num_frames,
        "num_gt_ids": len(gt_unique),
        "num_tracker_ids": len(tr_unique),
        "num_gt_dets": int(sum(len(x) for x in gt_ids_t)),
        "num_tracker_dets": int(sum(len(x) for x in tr_ids_t)),
        "gt_ids": [np.searchsorted(gt_unique, x) for x in gt_ids_t],
        "tracker_ids": [np.searchsorted(tr_unique, x) for x in tr_ids_t],
        "similarity_scores": sims,
    }


def evaluate_tracks(gt: np.ndarray, tracks: np.ndarray, num_frames: int | None = None) -> dict[str, float]:
    """HOTA, DetA, AssA, IDF1, MOTA (fractions), IDSW, IDs, GT_IDs, Frag of one sequence.

    gt: MOT ground-truth rows (N, >= 6; columns 7 and 8 are mark and class when present);
    tracks: MOT result rows (M, >= 6). num_frames: sequence length (default: the last frame seen).
    HOTA, DetA and AssA are averaged over TrackEval's 19 IoU thresholds 0.05..0.95.
    """
    trackeval = _trackeval()
    gt = np.asarray(gt, np.float64).reshape(-1, max(6, np.shape(gt)[-1] if np.size(gt) else 6))
    tracks = np.asarray(tracks, np.float64).reshape(-1, max(6, np.shape(tracks)[-1] if np.size(tracks) else 6))
    if num_frames is None:
        num_frames = int(max(gt[:, 0].max(initial=0), tracks[:, 0].max(initial=0)))
    data = _sequence_data(gt, tracks, num_frames)
    quiet = {"PRINT_CONFIG": False}
    hota = trackeval.metrics.HOTA(quiet).eval_sequence(data)
    clear = trackeval.metrics.CLEAR(quiet).eval_sequence(data)
    ident = trackeval.metrics.Identity(quiet).eval_sequence(data)
    return {
        "HOTA": float(np.mean(hota["HOTA"])),
        "DetA": float(np.mean(hota["DetA"])),
        "AssA": float(np.mean(hota["AssA"])),
        "IDF1": float(ident["IDF1"]),
        "MOTA": float(clear["MOTA"]),
        "IDSW": int(clear["IDSW"]),
        "Frag": int(clear["Frag"]),
        "IDs": int(data["num_tracker_ids"]),
        "GT_IDs": int(data["num_gt_ids"]),
    }


def format_metrics(metrics: dict[str, float]) -> str:
    """One line: HOTA 61.2 | DetA ... | IDSW 4 ..."""
    parts = []
    for key in SUMMARY:
        if key in metrics:
            value = metrics[key]
            parts.append(f"{key} {100 * value:.1f}" if isinstance(value, float) else f"{key} {value}")
    return " | ".join(parts)
