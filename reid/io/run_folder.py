"""The run folder: the one place that knows where a training run keeps its files.

    RUN/config.yaml          the config the run started with
    RUN/train.log            the text log
    RUN/metrics.jsonl        one record per epoch; RUN/metrics.json the final summary
    RUN/plots/               loss.png, metrics.png
    RUN/tb/                  TensorBoard events (when installed)
    RUN/checkpoints/         last.pt, best.pt (with a validation split), ema.pt, epoch_XXX.pt snapshots

Checkpoints are plain dicts written atomically and read with weights_only=True.
A path the user gives may be a run folder or a checkpoint file: `RunFolder.resolve` turns either
into (run folder, checkpoint file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reid.errors import ReidError

from .atomic import atomic_path

CHECKPOINT_NAMES = ("last", "best", "ema")


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write `state` to a temp file in the same folder, fsync it, then rename over `path`."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint (a file, or a run folder: its best.pt, else last.pt); tensors and plain data only."""
    path = RunFolder.resolve(path)[1]
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


@dataclass(frozen=True)
class RunFolder:
    """Paths inside one run folder; creating the object touches nothing on disk."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def metrics_log(self) -> Path:
        """metrics.jsonl: one JSON record per epoch."""
        return self.root / "metrics.jsonl"

    @property
    def summary(self) -> Path:
        """metrics.json: the final metrics of the run."""
        return self.root / "metrics.json"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, name: str | int) -> Path:
        """checkpoints/<name>.pt for "last", "best", "ema", or checkpoints/epoch_XXX.pt for an epoch number."""
        if isinstance(name, int):
            return self.checkpoints / f"epoch_{name:03d}.pt"
        if name not in CHECKPOINT_NAMES:
            raise ValueError(f"unknown checkpoint {name!r} ({', '.join(CHECKPOINT_NAMES)} or an epoch number)")
        return self.checkpoints / f"{name}.pt"

    def holds_run(self) -> bool:
        """Whether a run was already started here (metrics or a last checkpoint exist)."""
        return self.metrics_log.exists() or self.checkpoint("last").exists()

    def remove_stray_temps(self) -> list[Path]:
        """Checkpoint temp files a killed run left in checkpoints/ (see `remove_stray_temps`), removed."""
        return remove_stray_temps(self.checkpoints)

    def create(self) -> RunFolder:
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        return self

    def snapshot_folder(self) -> Path:
        """Where the snapshots are: RUN/checkpoints, or RUN itself for a folder of bare .pt files."""
        return self.checkpoints if self.checkpoints.is_dir() else self.root

    def snapshots(self, with_last: bool = True) -> list[Path]:
        """The epoch_XXX.pt snapshots in epoch order, plus last.pt (when present and `with_last`)."""
        folder = self.snapshot_folder()
        found = sorted(folder.glob("epoch_*.pt"))
        last = folder / "last.pt"
        return found + [last] if found and with_last and last.is_file() else found

    def find_snapshot(self, name: str) -> Path:
        """A snapshot named like "epoch_010.pt" (relative to the snapshot folder) or given as a path."""
        path = Path(name)
        return path if path.is_absolute() or path.exists() else self.snapshot_folder() / name

    @classmethod
    def of(cls, path: str | Path) -> RunFolder:
        """The run folder a path belongs to: the folder itself, or the run of a checkpoint file in it."""
        path = Path(path)
        if path.is_dir():
            return cls(path)
        parent = path.parent
        return cls(parent.parent if parent.name == "checkpoints" else parent)

    @classmethod
    def resolve(cls, path: str | Path) -> tuple[RunFolder, Path]:
        """(run folder, checkpoint file) of a run folder (its best.pt, else last.pt) or of a checkpoint file."""
        path = Path(path)
        if path.is_dir():
            run = cls(path)
            for candidate in (run.checkpoint("best"), run.checkpoint("last"), path / "last.pt"):
                if candidate.is_file():
                    return run, candidate
            raise ReidError(f"{path}: checkpoint not found (no checkpoints/best.pt or checkpoints/last.pt)")
        if not path.is_file():
            raise ReidError(f"{path}: checkpoint not found")
        return cls.of(path), path
