"""Backbones and the re-ID model."""

from .backbones import build_backbone
from .reid_model import ReidModel, build_model

__all__ = ["ReidModel", "build_backbone", "build_model"]
