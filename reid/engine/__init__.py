"""Training: the Trainer and its collaborators (evaluation, run log, checkpoints, EMA, warm-up, DDP)."""

from .evaluator import Evaluator
from .trainer import Trainer
from .warmup import ClassifierWarmup

__all__ = ["ClassifierWarmup", "Evaluator", "Trainer"]
