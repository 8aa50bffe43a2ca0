"""read_image: every usable image becomes BGR uint8 (H, W, 3); bad files are named."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reid.data.image_io import image_problem, read_image, to_bgr
from reid.errors import DataError


@pytest.fixture
def colour() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(12, 6, 3), dtype=np.uint8)


def test_colour_png_round_trips_exactly_in_bgr_order(tmp_path, colour):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), colour)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (12, 6, 3)
    np.testing.assert_array_equal(out, colour)


def test_jpeg_decodes_to_three_channels(tmp_path, colour):
    path = tmp_path / "a.jpg"
    cv2.imwrite(str(path), colour)
    assert read_image(path).shape == (12, 6, 3)


def test_grayscale_jpeg_becomes_three_equal_channels(tmp_path):
    gray = np.tile(np.arange(0, 240, 20, dtype=np.uint8)[:, None], (1, 8))
    path = tmp_path / "g.png"
    cv2.imwrite(str(path), gray)
    out = read_image(path)
    assert out.shape == (12, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_rgba_png_drops_alpha(tmp_path, colour):
    bgra = np.dstack([colour, np.full(colour.shape[:2], 7, np.uint8)])
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), bgra)
    np.testing.assert_array_equal(read_image(path), colour)


def test_sixteen_bit_png_keeps_the_high_byte(tmp_path, colour):
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), colour.astype(np.uint16) * 256 + 255)
    np.testing.assert_array_equal(read_image(path), colour)


def test_to_bgr_gray_alpha():
    ga = np.zeros((2, 2, 2), np.uint8)
    ga[..., 0] = 9
    assert (to_bgr(ga) == 9).all() and to_bgr(ga).shape == (2, 2, 3)


def test_zero_byte_file_is_named(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.jpg: image file is empty \(0 bytes\)"):
        read_image(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"gone\.jpg: image file not found"):
        read_image(tmp_path / "gone.jpg")


def test_garbage_is_named(tmp_path):
    path = tmp_path / "junk.jpg"
    path.write_bytes(b"this is not an image at all")
    with pytest.raises(DataError, match=r"junk\.jpg: cannot decode image \(corrupt or unsupported format\)"):
        read_image(path)


def test_truncated_jpeg_is_refused_not_half_decoded(tmp_path, colour):
    _, data = cv2.imencode(".jpg", np.kron(colour, np.ones((8, 8, 1), np.uint8)))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data.tobytes()[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.jpg: truncated JPEG \(no end-of-image marker\)"):
        read_image(path)
    assert image_problem(path) == "truncated JPEG (no end-of-image marker)"


def test_truncated_png_is_refused(tmp_path, colour):
    _, data = cv2.imencode(".png", colour)
    path = tmp_path / "cut.png"
    path.write_bytes(data.tobytes()[:-20])
    with pytest.raises(DataError, match=r"cut\.png: truncated PNG \(no IEND chunk\)"):
        read_image(path)


def test_jpeg_with_padding_after_end_marker_is_accepted(tmp_path, colour):
    _, data = cv2.imencode(".jpg", colour)
    path = tmp_path / "padded.jpg"
    path.write_bytes(data.tobytes() + b"\x00" * 100)
    assert image_problem(path) is None
    assert read_image(path).shape == (12, 6, 3)
