"""Box geometry for crops of video frames: MOT (x, y, w, h) boxes, checks, clipping, crop views."""

from __future__ import annotations

import numpy as np

from reid.errors import DataError


def boxes_from_tlwh(tlwh: np.ndarray) -> np.ndarray:
    """MOT (x, y, w, h) boxes (N, 4) -> (x0, y0, x1, y1)."""
    tlwh = np.asarray(tlwh, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([tlwh[:, :2], tlwh[:, :2] + tlwh[:, 2:]], axis=1)


def clip_boxes(boxes_xyxy: np.ndarray, height: int, width: int) -> np.ndarray:
    """Integer pixel boxes (N, 4) [x0, y0, x1, y1) inside a (height, width) frame.

    x0/y0 are floored and x1/y1 ceiled (the crop covers the whole box), then clipped to the
    frame. A box that is empty after clipping (outside the frame or zero-sized) becomes the
    1x1 pixel of the frame nearest to it, so every box gets a feature and rows stay aligned.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    if not np.isfinite(boxes).all():
        bad = int(np.flatnonzero(~np.isfinite(boxes).all(axis=1))[0])
        raise DataError(f"box {bad}: coordinates must be finite numbers, got {boxes[bad].tolist()}")
    x0 = np.clip(np.floor(boxes[:, 0]), 0, width - 1)
    y0 = np.clip(np.floor(boxes[:, 1]), 0, height - 1)
    x1 = np.clip(np.ceil(boxes[:, 2]), 0, width)
    y1 = np.clip(np.ceil(boxes[:, 3]), 0, height)
    x1 = np.maximum(x1, x0 + 1)  # empty after clipping: one pixel
    y1 = np.maximum(y1, y0 + 1)
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)


BOX_FORMATS = ("xyxy", "tlwh")


def as_xyxy(boxes: np.ndarray, box_format: str = "xyxy") -> np.ndarray:
    """Boxes (N, 4) in `box_format` ("xyxy": x0, y0, x1, y1; "tlwh": x, y, w, h) -> float64 xyxy.

    A box with x1 < x0 or y1 < y0 (e.g. (x, y, w, h) boxes passed as xyxy) is a DataError,
    not a silent 1-pixel crop.
    """
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format must be 'xyxy' or 'tlwh', got {box_format!r}")
    try:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    except (TypeError, ValueError):
        raise DataError("boxes: expected an (N, 4) array of numbers") from None
    if not np.isfinite(boxes).all():
        bad = int(np.flatnonzero(~np.isfinite(boxes).all(axis=1))[0])
        raise DataError(f"box {bad}: coordinates must be finite numbers, got {boxes[bad].tolist()}")
    if box_format == "tlwh":
        if (boxes[:, 2:] < 0).any():
            bad = int(np.flatnonzero((boxes[:, 2:] < 0).any(axis=1))[0])
            raise DataError(f"box {bad}: negative width or height in tlwh box {boxes[bad].tolist()}")
        return boxes_from_tlwh(boxes)
    inverted = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if inverted.any():
        bad = int(np.flatnonzero(inverted)[0])
        raise DataError(
            f"box {bad}: x1 < x0 or y1 < y0 in {boxes[bad].tolist()}; for (x, y, w, h) boxes pass box_format='tlwh'"
        )
    return boxes


def crop_boxes(frame: np.ndarray, boxes_xyxy: np.ndarray) -> list[np.ndarray]:
    """Views of `frame` (H, W, C) for each box (N, 4) in x0, y0, x1, y1 pixels (see clip_boxes)."""
    if frame is None:
        raise DataError("frame: got None (cv2.imread returns None for a missing or unreadable file)")
    if not isinstance(frame, np.ndarray):
        raise DataError(f"frame: expected an (H, W, 3) uint8 array, got {type(frame).__name__}")
    if frame.ndim < 2 or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(f"frame: expected an (H, W, 3) image, got shape {frame.shape}")
    clipped = clip_boxes(boxes_xyxy, frame.shape[0], frame.shape[1])
    return [frame[y0:y1, x0:x1] for x0, y0, x1, y1 in clipped.tolist()]
