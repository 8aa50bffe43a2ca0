"""The per-frame call a tracker makes: features of all detections of one frame.

    from deep_sort_realtime.deepsort_tracker import DeepSort
    from reid.inference.extractor import FeatureExtractor
    from reid.tracking import embed_detections

    extractor = FeatureExtractor("runs/demo", batch_size=64)
    tracker = DeepSort(embedder=None, max_cosine_distance=0.3)
    for frame, boxes, scores in video:                      # boxes (N, 4) left, top, width, height
        feats = embed_detections(extractor, frame, boxes)  # (N, D), one forward pass for N <= 64
        tracks = tracker.update_tracks([(b, s, "person") for b, s in zip(boxes, scores)], embeds=feats)

The crops go through `FeatureExtractor.from_frame`, so the preprocessing is the
checkpoint's own; with `batch_size` at least the number of boxes in a frame, all crops of
the frame share one forward pass.
"""

from __future__ import annotations

import numpy as np

from reid.errors import DataError
from reid.inference.extractor import FeatureExtractor, boxes_from_tlwh

BOX_FORMATS = ("tlwh", "xyxy", "cxcywh")


def to_xyxy(boxes: np.ndarray, box_format: str = "tlwh") -> np.ndarray:
    """Boxes (N, 4) in `box_format` -> x0, y0, x1, y1 float64.

    tlwh: left, top, width, height (MOTChallenge, DeepSORT's ltwh); xyxy: corners;
    cxcywh: centre, width, height (YOLO-style, in pixels).
    """
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format must be one of {', '.join(BOX_FORMATS)}, got {box_format!r}")
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size and (arr.ndim != 2 or arr.shape[1] != 4):
        raise DataError(f"boxes: expected an (N, 4) array, got shape {arr.shape}")
    arr = arr.reshape(-1, 4)
    if box_format == "tlwh":
        return boxes_from_tlwh(arr)
    if box_format == "cxcywh":
        half = arr[:, 2:] / 2
        return np.concatenate([arr[:, :2] - half, arr[:, :2] + half], axis=1)
    return arr


def embed_detections(
    extractor: FeatureExtractor,
    frame: np.ndarray,
    boxes: np.ndarray,
    box_format: str = "tlwh",
    color: str = "bgr",
) -> np.ndarray:
    """L2-normalised features (N, D) float32 of the N boxes of one frame (H, W, 3) uint8.

    Rows follow the boxes; boxes are clipped to the frame for cropping (an empty one gets
    the nearest pixel, so rows stay aligned); no boxes gives a (0, D) array.
    """
    return extractor.from_frame(frame, to_xyxy(boxes, box_format), color=color)


__all__ = ["BOX_FORMATS", "embed_detections", "to_xyxy"]
