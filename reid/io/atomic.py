"""Atomic file replacement: write to a temp file beside the target, then rename over it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temp path in `path`'s folder; on success it replaces `path` in one rename.

    A crash or an exception inside the block removes the temp file and leaves any
    previous `path` untouched, so readers never see a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # the data reaches the disk before the rename
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` with `data` atomically (a full disk leaves the old file, never a 0-byte one)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Replace `path` with UTF-8 `text` atomically."""
    write_bytes(path, text.encode("utf-8"))


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line to a small log (metrics.jsonl) by rewriting it atomically: no torn last line."""
    path = Path(path)
    old = path.read_bytes() if path.is_file() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    write_bytes(path, old + line.rstrip("\n").encode("utf-8") + b"\n")


def save_figure(fig, path: str | os.PathLike, **kwargs) -> None:  # noqa: ANN001 - a matplotlib Figure
    """fig.savefig through a temp file (the format comes from `path`'s suffix unless given)."""
    kwargs.setdefault("format", Path(path).suffix.lstrip(".") or "png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)


def write_image(path: str | os.PathLike, image, params: list[int] | None = None) -> None:  # noqa: ANN001 - ndarray
    """cv2.imwrite through a temp file; the encoder is picked from `path`'s suffix, so odd names are fine."""
    import cv2

    ok, encoded = cv2.imencode(Path(path).suffix or ".png", image, params or [])
    if not ok:
        raise OSError(f"{path}: cannot encode the image")
    write_bytes(path, encoded.tobytes())
