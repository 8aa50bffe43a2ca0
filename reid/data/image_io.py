"""Image decoding with OpenCV: every image becomes a BGR uint8 (H, W, 3) array."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from reid.errors import DataError


def read_image(path: str | Path) -> np.ndarray:
    """Decode `path` to BGR uint8 (H, W, 3); grayscale and alpha are converted.

    Raises DataError naming the file when it is missing, empty or not decodable.
    """
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    if data is None:
        raise DataError(f"{path}: image file not found")
    if data.size == 0:
        raise DataError(f"{path}: image file is empty (0 bytes)")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"{path}: cannot decode image (corrupt or unsupported format)")
    return to_bgr(image)


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Convert gray (H, W), gray+alpha, BGRA or 16-bit images to BGR uint8 (H, W, 3)."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 2:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image
