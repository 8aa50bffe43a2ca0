"""Rebuild a trained model from a checkpoint, with its own preprocessing."""

from __future__ import annotations

from pathlib import Path

import torch

from reid.config import Config, config_from_dict
from reid.data.transforms import Preprocess
from reid.io.fingerprint import stable_hash
from reid.io.run_folder import load_checkpoint

from .reid_model import ReidModel, build_model


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[ReidModel, Preprocess, Config, dict]:
    """Return (model in eval mode on `device`, its Preprocess, its Config, the raw checkpoint).

    `path`: a checkpoint file or a run folder (see reid.io.run_folder.RunFolder.resolve).
    """
    state = load_checkpoint(path)
    return model_from_checkpoint(state, device=device), Preprocess.from_dict(state["preprocess"]), _config(state), state


def _config(state: dict) -> Config:
    config = config_from_dict(state["config"])
    config.model.pretrained = False  # the checkpoint holds the weights
    return config


def model_from_checkpoint(state: dict, weights: dict | None = None, device: str | torch.device = "cpu") -> ReidModel:
    """The one way to rebuild a model from a loaded checkpoint: its architecture with `weights`
    (default: its own), in eval mode on `device`."""
    model = build_model(_config(state).model, int(state["num_classes"]))
    model.load_state_dict(weights if weights is not None else state["model"])
    return model.to(device).eval()


def weights_fingerprint(state: dict) -> str:
    """A short hash of a checkpoint's model weights: names a model by its content, not its path.

    Used to recognise that a half-written feature file came from the same model before
    resuming it (a retrained checkpoint at the same path gets a different fingerprint).
    """

    def parts():
        for name in sorted(state["model"]):
            tensor = state["model"][name]
            yield name
            if isinstance(tensor, torch.Tensor):
                yield str(tensor.dtype)
                yield tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()

    return stable_hash(parts())
