"""The per-frame call a tracker makes: features of all detections of one frame.

    from deep_sort_realtime.deepsort_tracker import DeepSort
    from reid.tracking import embed_detections, tracking_extractor

    extractor = tracking_extractor("runs/demo")             # onnxruntime on the CPU when installed
    tracker = DeepSort(embedder=None, max_cosine_distance=0.3)
    for frame, boxes, scores in video:                      # boxes (N, 4) left, top, width, height
        feats = embed_detections(extractor, frame, boxes)  # (N, D), one forward pass for N <= 64
        tracks = tracker.update_tracks([(b, s, "person") for b, s in zip(boxes, scores)], embeds=feats)

The crops are resized by OpenCV into one preallocated uint8 batch and go through the
extractor in one call, so the preprocessing is the checkpoint's own and, with `batch_size`
at least the number of boxes in a frame, all crops of the frame share one forward pass.
Why onnxruntime on the CPU: a small re-ID network on a handful of 64x32 crops spends a fixed
~10 ms per eager PyTorch forward outside the arithmetic (oneDNN reorders every convolution's
weights on each call; batch-norm is a separate pass); onnxruntime prepacks the weights once
and folds batch-norm into the convolutions, which leaves only the per-crop arithmetic.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from pathlib import Path

import numpy as np

from reid.data.boxes import crop_boxes
from reid.errors import DataError
from reid.inference.extractor import FeatureExtractor, boxes_from_tlwh, resize_into

BOX_FORMATS = ("tlwh", "xyxy", "cxcywh")
TRACKING_BACKENDS = ("auto", "torch", "onnxruntime")
STAGES = ("crops", "forward")  # keys `embed_detections(timings=...)` adds to


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


def resolve_backend(backend: str, device: str | None = None) -> str:
    """'auto' -> 'onnxruntime' on the CPU when onnxruntime is installed, else 'torch'."""
    if backend not in TRACKING_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(TRACKING_BACKENDS)}, got {backend!r}")
    if backend != "auto":
        return backend
    on_cpu = device is None or str(device).startswith("cpu")
    if device is None:
        import torch

        on_cpu = not torch.cuda.is_available()
    return "onnxruntime" if on_cpu and importlib.util.find_spec("onnxruntime") is not None else "torch"


def tracking_extractor(
    checkpoint: str | Path,
    device: str | None = None,
    batch_size: int = 64,
    backend: str = "auto",
) -> FeatureExtractor:
    """A `FeatureExtractor` set up for per-frame tracking; `backend` is passed through ('auto': see resolve_backend)."""
    resolve_backend(backend, device)  # checks the name
    return FeatureExtractor(checkpoint, device=device, batch_size=batch_size, backend=backend)


def embed_detections(
    extractor: FeatureExtractor,
    frame: np.ndarray,
    boxes: np.ndarray,
    box_format: str = "tlwh",
    color: str = "bgr",
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """L2-normalised features (N, D) float32 of the N boxes of one frame (H, W, 3) uint8.

    Rows follow the boxes; boxes are clipped to the frame for cropping (an empty one gets
    the nearest pixel, so rows stay aligned); no boxes gives a (0, D) array. With `timings`,
    the wall seconds spent are added to its "crops" (clip, crop, resize into the batch) and
    "forward" (normalise, network, L2) entries, this process's CPU seconds to "crops_cpu"
    and "forward_cpu".
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    xyxy = to_xyxy(boxes, box_format)
    if color not in ("bgr", "rgb"):
        raise ValueError(f"color must be 'bgr' or 'rgb', got {color!r}")
    crops = crop_boxes(frame, xyxy)
    if not crops:
        return np.zeros((0, extractor.feature_dim), np.float32)
    # resize only, in the frame's own channel order: the extractor reorders channels itself
    pre = extractor.pre
    out = np.empty((len(crops), pre.height, pre.width, 3), np.uint8)
    batch = resize_into(crops, dataclasses.replace(pre, color="bgr"), out)
    middle, cpu_middle = time.perf_counter(), time.process_time()
    feats = extractor(batch, color=color)
    if timings is not None:
        for key, value in (
            ("crops", middle - start),
            ("forward", time.perf_counter() - middle),
            ("crops_cpu", cpu_middle - cpu_start),
            ("forward_cpu", time.process_time() - cpu_middle),
        ):
            timings[key] = timings.get(key, 0.0) + value
    return feats


__all__ = [
    "BOX_FORMATS",
    "STAGES",
    "TRACKING_BACKENDS",
    "embed_detections",
    "resolve_backend",
    "to_xyxy",
    "tracking_extractor",
]
