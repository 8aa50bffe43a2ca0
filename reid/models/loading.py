"""Rebuild a trained model from a checkpoint, with its own preprocessing."""

from __future__ import annotations

from pathlib import Path

import torch

from reid.config import Config, config_from_dict
from reid.data.transforms import Preprocess
from reid.engine.checkpoint import load_checkpoint

from .reid_model import ReidModel, build_model


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[ReidModel, Preprocess, Config, dict]:
    """Return (model in eval mode on `device`, its Preprocess, its Config, the raw checkpoint)."""
    state = load_checkpoint(path)
    config = config_from_dict(state["config"])
    config.model.pretrained = False  # the checkpoint holds the weights
    model = build_model(config.model, int(state["num_classes"]))
    model.load_state_dict(state["model"])
    pre = Preprocess.from_dict(state["preprocess"])
    return model.to(device).eval(), pre, config, state
