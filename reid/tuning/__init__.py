"""Hyperparameter search with Optuna: `reid tune` (search space, study, trials, report)."""

from .space import Param, SearchSpace, load_space
from .study import TuneResult, run_tune

__all__ = ["Param", "SearchSpace", "TuneResult", "load_space", "run_tune"]
