"""Temporal ensembling: combine checkpoints of one training run (Group Loss++, docs/method.md section 4).

Three modes:
- "weights": one model whose parameters AND BatchNorm buffers are the element-wise mean of the
  snapshots' (running_mean / running_var averaged like weights; integer counters such as
  num_batches_tracked taken from the last snapshot). Recomputing BN statistics on training data
  would be the exact alternative; the plain average is what we do.
- "features": the mean of the snapshots' final embeddings (L2-normalised again when beta = 0).
- "concat": the snapshots' final embeddings side by side, divided by sqrt(n), so the cosine
  (or half squared Euclidean) distance is the mean of the per-snapshot distances.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from reid.config import config_from_dict
from reid.data.transforms import Preprocess
from reid.errors import ReidError
from reid.evaluation.distance import l2_normalize
from reid.io.run_folder import RunFolder, load_checkpoint
from reid.models.loading import model_from_checkpoint
from reid.models.reid_model import ReidModel

ENSEMBLE_MODES = ("weights", "features", "concat")


def resolve_snapshots(model_arg: str | Path, names: Sequence[str]) -> list[Path]:
    """Snapshot paths from names like "epoch_010.pt" (relative to the run's checkpoints folder)."""
    names = [n.strip() for n in names if n.strip()]
    if len(names) < 2:
        raise ReidError(f"--ensemble: give at least two checkpoints, got {len(names)}")
    run, paths = RunFolder.of(model_arg), []
    for name in names:
        path = run.find_snapshot(name)
        if not path.is_file():
            raise ReidError(f"--ensemble: {path} not found")
        paths.append(path)
    return paths


def discover_snapshots(model_arg: str | Path) -> list[Path]:
    """The run's epoch_XXX.pt snapshots in epoch order, plus last.pt when present."""
    return RunFolder.of(model_arg).snapshots()


def _model_signature(state: dict) -> tuple:
    config = config_from_dict(state["config"])
    return (config.model.backbone, config.model.last_stride, config.model.pooling, config.model.neck)


def load_snapshots(paths: Sequence[Path], device: torch.device | str = "cpu") -> tuple[list[dict], Preprocess]:
    """Load the raw checkpoints; they must share the model architecture and preprocessing."""
    states = [load_checkpoint(p) for p in paths]
    first = states[0]
    for path, state in zip(paths[1:], states[1:]):
        if _model_signature(state) != _model_signature(first) or state["num_classes"] != first["num_classes"]:
            raise ReidError(f"--ensemble: {path} is a different model than {paths[0]} (backbone/pooling/classes)")
        if state.get("preprocess") != first.get("preprocess"):
            raise ReidError(f"--ensemble: {path} uses a different preprocessing than {paths[0]}")
    return states, Preprocess.from_dict(first["preprocess"])


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating tensors (parameters and BN running stats, in float64);
    non-floating tensors (num_batches_tracked) are taken from the last state dict."""
    if not states:
        raise ValueError("no state dicts to average")
    keys = list(states[0])
    for i, state in enumerate(states[1:], 1):
        if list(state) != keys or any(state[k].shape != states[0][k].shape for k in keys):
            raise ValueError(f"state dict {i} has different keys or shapes than state dict 0")
    averaged = {}
    for key in keys:
        tensors = [state[key] for state in states]
        if tensors[0].is_floating_point():
            mean = torch.stack([t.double() for t in tensors]).mean(0)
            averaged[key] = mean.to(tensors[0].dtype)
        else:
            averaged[key] = tensors[-1].clone()
    return averaged


def weight_averaged_model(states: Sequence[dict], device: torch.device | str = "cpu") -> ReidModel:
    """One model with the mean weights of the snapshots (mode "weights")."""
    return model_from_checkpoint(states[-1], average_state_dicts([s["model"] for s in states]), device)


def combine_features(features: Sequence[np.ndarray], mode: str, normalize: bool = True) -> np.ndarray:
    """Combine per-snapshot final features (each (N, D)) by mean ("features") or concatenation."""
    if not features:
        raise ValueError("no features to combine")
    if mode == "features":
        out = np.mean(np.stack(features), axis=0)
        if normalize:
            out = l2_normalize(out.astype(np.float32))
        return out.astype(np.float32)
    if mode == "concat":
        return (np.concatenate(features, axis=1) / np.sqrt(len(features))).astype(np.float32)
    raise ValueError(f"unknown feature ensemble mode {mode!r} (features or concat)")
