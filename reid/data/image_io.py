"""Image decoding with OpenCV: every image becomes a BGR uint8 (H, W, 3) array.

Truncated JPEG/PNG files are refused rather than decoded into half-grey images
(libjpeg only prints a warning for them), so a bad file is named once instead of
silently poisoning training.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from reid.errors import DataError

_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_image(path: str | Path) -> np.ndarray:
    """Decode `path` to BGR uint8 (H, W, 3); grayscale, alpha and 16-bit are converted.

    Raises DataError naming the file when it is missing, empty, truncated or not decodable.
    """
    data = _read_bytes(path)
    problem = truncation(data)
    if problem is not None:
        raise DataError(f"{path}: {problem}")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"{path}: cannot decode image (corrupt or unsupported format)")
    return to_bgr(image)


def image_problem(path: str | Path) -> str | None:
    """Why `path` cannot be used as an image (one phrase), or None when it decodes."""
    try:
        read_image(path)
    except DataError as err:
        return str(err).removeprefix(f"{path}: ")
    return None


def _read_bytes(path: str | Path) -> np.ndarray:
    if not Path(path).is_file():
        raise DataError(f"{path}: image file not found")
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as err:
        raise DataError(f"{path}: cannot read image file ({err.strerror or err})") from None
    if data.size == 0:
        raise DataError(f"{path}: image file is empty (0 bytes)")
    return data


def truncation(data: np.ndarray) -> str | None:
    """'truncated JPEG ...' / 'truncated PNG ...' when the end marker is missing, else None.

    JPEG: the end-of-image marker FFD9 must occur in the last 1 KiB (trailing padding
    after it is tolerated). PNG: the IEND chunk must close the file.
    """
    head = data[:8].tobytes()
    if head.startswith(_JPEG_SOI):
        if _JPEG_EOI not in data[-1024:].tobytes():
            return "truncated JPEG (no end-of-image marker)"
    elif head == _PNG_MAGIC and b"IEND" not in data[-64:].tobytes():
        return "truncated PNG (no IEND chunk)"
    return None


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
