"""Checkpoints: plain dicts, written atomically, loaded with weights_only=True."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from reid.errors import ReidError
from reid.io.atomic import atomic_path


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write `state` to a temp file in the same folder, fsync it, then rename over `path`."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (tensors and plain data only)."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "checkpoints" / "best.pt", path / "checkpoints" / "last.pt", path / "last.pt"):
            if candidate.is_file():
                path = candidate
                break
    if not path.is_file():
        raise ReidError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt file is a user-facing error
        raise ReidError(f"{path}: not a readable reid checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ReidError(f"{path}: not a reid checkpoint (no model/config entries)")
    return state


def remove_stray_temps(folder: str | Path) -> list[Path]:
    """Delete the `.NAME.pt.XXXX.tmp` files a killed run left behind (reid.io.atomic temp files).

    Called when a run starts or resumes, before anything writes into `folder`: a temp file is
    only ever live inside one save, so any found then is garbage. Returns what was removed.
    """
    removed = []
    for stray in sorted(Path(folder).glob(".*.pt.*.tmp")):
        if stray.is_file() and not stray.is_symlink():
            stray.unlink(missing_ok=True)
            removed.append(stray)
    return removed
