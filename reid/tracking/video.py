"""Video input (OpenCV), OpenCV's HOG people detector, and the rendered output video.

The HOG detector is OpenCV's default people detector (Dalal & Triggs, a 64x128 window);
people smaller than ~128 px are found after upscaling the frame (`upscale`), boxes are
mapped back to the frame's pixels. It needs an OpenCV build with the objdetect HOG
(`opencv-contrib-python-headless`, the project's OpenCV).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from reid.errors import DataError

from .runner import Frame, group_by_frame


class HogDetector:
    """People boxes (N, 5) tlwh + SVM score of a BGR frame; scores below `min_score` dropped."""

    def __init__(self, upscale: float = 1.5, scale: float = 1.1, win_stride: int = 8, min_score: float = 0.3):
        if not hasattr(cv2, "HOGDescriptor"):
            raise DataError("--detector hog needs OpenCV's HOGDescriptor (install opencv-contrib-python-headless)")
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor.getDefaultPeopleDetector())
        self.upscale, self.scale, self.stride, self.min_score = upscale, scale, win_stride, min_score

    def __call__(self, image: np.ndarray) -> np.ndarray:
        big = cv2.resize(image, None, fx=self.upscale, fy=self.upscale) if self.upscale != 1 else image
        rects, scores = self.hog.detectMultiScale(
            big, winStride=(self.stride, self.stride), padding=(0, 0), scale=self.scale
        )
        if len(rects) == 0:
            return np.zeros((0, 5))
        out = np.concatenate([np.asarray(rects, np.float64) / self.upscale, np.asarray(scores).reshape(-1, 1)], 1)
        return out[out[:, 4] >= self.min_score]


def open_video(path: str | Path) -> tuple[cv2.VideoCapture, float, int, int, int]:
    """(capture, fps, frame count, width, height); a file OpenCV cannot read is a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--video {path}: file not found")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"--video {path}: OpenCV cannot read this video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    return cap, fps, count, int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))


def video_frames(
    path: str | Path,
    detections: str | Path | None = None,
    detector: HogDetector | None = None,
    max_frames: int | None = None,
) -> tuple[Iterator[Frame], dict]:
    """Frames of a video (1-based) with detections from a MOT det file or a detector; and the video's info."""
    from reid.io.mot import read_detections

    if (detections is None) == (detector is None):
        raise DataError("give exactly one of --detections FILE or --detector hog")
    cap, fps, count, width, height = open_video(path)
    if max_frames:
        count = min(count, max_frames) if count > 0 else max_frames
    by_frame = group_by_frame(read_detections(detections)[0]) if detections is not None else {}
    if detections is not None and count > 0 and by_frame and max(by_frame) > count and not max_frames:
        cap.release()
        raise DataError(f"{detections}: detections for frame {max(by_frame)}, the video has {count} frames")

    def frames() -> Iterator[Frame]:
        index = 0
        try:
            while not max_frames or index < max_frames:
                ok, image = cap.read()
                if not ok:
                    break
                index += 1
                dets = detector(image) if detector is not None else by_frame.get(index, np.zeros((0, 5)))
                yield Frame(index, image, dets)
        finally:
            cap.release()

    return frames(), {"fps": fps, "frames": count, "width": width, "height": height}


def _colour(track_id: int) -> tuple[int, int, int]:
    hue = (track_id * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


class Renderer:
    """Writes frames with each track's box and id (one colour per id) to an .mp4 (mp4v), atomically."""

    def __init__(self, path: str | Path, fps: float, width: int, height: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix or '.mp4'}")
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not self.writer.isOpened():
            raise DataError(f"--render {path}: OpenCV cannot write this video (use an .mp4 name)")
        self.size = (width, height)

    def __call__(self, frame: Frame, rows: np.ndarray) -> None:
        image = frame.image.copy()
        for det in frame.detections:  # detections: thin grey
            x, y, w, h = det[:4].astype(int)
            cv2.rectangle(image, (x, y), (x + w, y + h), (160, 160, 160), 1)
        for row in rows:
            x, y, w, h = row[2:6].astype(int)
            colour = _colour(int(row[1]))
            cv2.rectangle(image, (x, y), (x + w, y + h), colour, 2)
            cv2.putText(image, str(int(row[1])), (x, max(y - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2)
        cv2.putText(image, f"frame {frame.index}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        if image.shape[1::-1] != self.size:
            image = cv2.resize(image, self.size)
        self.writer.write(image)

    def close(self, keep: bool = True) -> None:
        self.writer.release()
        if keep:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
