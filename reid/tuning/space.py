"""A search space file: which config keys a tune varies, over which ranges, and what it maximises.

    metric: mAP            # validation metric (rank1, mAP, mINP) the trials are ranked and pruned on
    eval_every: 1          # validation every N epochs (the intermediate values the pruner sees)
    overrides: [train.epochs=8]   # fixed for every trial, on top of the config
    params:
      loss.group.temperature: {type: float, low: 5, high: 80, log: true}
      loss.group.num_anchors: {type: int, low: 0, high: 3}
      loss.group.similarity: {type: categorical, choices: [pearson, cosine]}

Every key is a dotted config key, checked against the config when the space is loaded, so a typo
fails before any training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reid.config import load_config
from reid.errors import ConfigError
from reid.losses import build_loss

METRICS = ("rank1", "mAP", "mINP")
TYPES = ("float", "int", "categorical")


@dataclass(frozen=True)
class Param:
    """One searched config key."""

    key: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Draw a value from an optuna trial."""
        if self.type == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_categorical(self.key, list(self.choices))

    def sample_value(self) -> Any:
        """A legal value of the parameter (used to validate the key against the config)."""
        return self.choices[0] if self.type == "categorical" else (int(self.low) if self.type == "int" else self.low)


@dataclass
class SearchSpace:
    params: list[Param]
    metric: str = "mAP"
    eval_every: int = 1
    overrides: list[str] = field(default_factory=list)


def _param(key: str, spec: Any, where: str) -> Param:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping like {{type: float, low: 1, high: 10}}, got {spec!r}")
    unknown = set(spec) - {"type", "low", "high", "log", "step", "choices"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{where}.type: expected one of {', '.join(TYPES)}, got {kind!r}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}.choices: expected a non-empty list")
        return Param(key, kind, choices=tuple(choices))
    low, high = spec.get("low"), spec.get("high")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
    if not numbers or not low < high:
        raise ConfigError(f"{where}: expected numbers low < high, got low={low!r} high={high!r}")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got {low!r}")
    return Param(key, kind, low=low, high=high, log=log, step=spec.get("step"))


def load_space(path: str | Path, config_path: str | Path | None, overrides: list[str] | None = None) -> SearchSpace:
    """Read and validate a search space file against the config it will be applied to."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: search space file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with a `params` section")
    unknown = set(raw) - {"params", "metric", "eval_every", "overrides"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    params_raw = raw.get("params")
    if not isinstance(params_raw, dict) or not params_raw:
        raise ConfigError(f"{path}: `params` must map dotted config keys to ranges")
    params = [_param(str(key), spec, f"{path}: params.{key}") for key, spec in params_raw.items()]
    metric = raw.get("metric", "mAP")
    if metric not in METRICS:
        raise ConfigError(f"{path}: metric must be one of {', '.join(METRICS)}, got {metric!r}")
    eval_every = raw.get("eval_every", 1)
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
        raise ConfigError(f"{path}: eval_every must be an integer >= 1, got {eval_every!r}")
    fixed = raw.get("overrides", [])
    if not isinstance(fixed, list) or not all(isinstance(item, str) for item in fixed):
        raise ConfigError(f"{path}: overrides must be a list of key=value strings")
    space = SearchSpace(params, metric=metric, eval_every=eval_every, overrides=list(fixed))
    for param in params:  # every key must exist in the config (a typo fails here, not after hours)
        try:
            config = load_config(config_path, [*(overrides or []), *fixed, f"{param.key}={param.sample_value()}"])
            if param.key.startswith("loss."):
                build_loss(config.loss, num_classes=10)
        except ConfigError as exc:
            raise ConfigError(f"{path}: params.{param.key}: {exc}") from None
    return space
