"""A weighted sum of losses built from a config mapping, with each term fed the inputs it needs."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .center import CenterLoss
from .cross_entropy import CrossEntropyLabelSmooth
from .group_loss import GroupLoss
from .group_presets import group_options
from .ranked_list import RankedListLoss
from .triplet import TripletLoss

# name -> (class, what its forward takes, whether it is constructed with num_classes)
LOSSES: dict[str, tuple[type[nn.Module], str, bool]] = {
    "group": (GroupLoss, "both", True),
    "ce": (CrossEntropyLabelSmooth, "logits", True),
    "triplet": (TripletLoss, "embeddings", False),
    "ranked_list": (RankedListLoss, "embeddings", False),
    "center": (CenterLoss, "embeddings", True),
}


def _options(cls: type[nn.Module]) -> set[str]:
    params = inspect.signature(cls.__init__).parameters
    return {name for name in params if name not in ("self", "num_classes", "generator")}


class CombinedLoss(nn.Module):
    """sum_k weight_k * loss_k(inputs_k); forward returns (total, {name: float value of loss_k}).

    Routing: "group" gets (embeddings, logits, labels) and draws its anchors from the global RNG
    (call GroupLoss directly to pass a generator), "ce" gets (logits, labels),
    "triplet", "ranked_list" and "center" get (embeddings, labels); a Group Loss with
    w_features="bnneck" gets `neck` (the BNNeck output) in place of the embeddings. The parts are the unweighted
    term values (detached floats, for logging); "group" also reports "group.nll" and "group.ce".
    """

    def __init__(self, terms: Mapping[str, nn.Module], weights: Mapping[str, float]) -> None:
        super().__init__()
        if not terms:
            raise ValueError("CombinedLoss needs at least one loss")
        self.terms = nn.ModuleDict(dict(terms))
        self.weights = {name: float(weights[name]) for name in terms}

    def extra_repr(self) -> str:
        return ", ".join(f"{name}: {weight}" for name, weight in self.weights.items())

    @property
    def uses_logits(self) -> bool:
        """Whether any term reads the classifier logits (a metric-only loss leaves the classifier unused)."""
        return any(LOSSES[name][1] in ("logits", "both") for name in self.terms)

    def forward(
        self,
        embeddings: torch.Tensor | None,
        logits: torch.Tensor | None,
        labels: torch.Tensor,
        neck: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        total: torch.Tensor | None = None
        parts: dict[str, float] = {}
        for name, module in self.terms.items():
            needs = LOSSES[name][1]
            if needs in ("embeddings", "both") and embeddings is None:
                raise ValueError(f"loss '{name}' needs embeddings, got None")
            if needs in ("logits", "both") and logits is None:
                raise ValueError(f"loss '{name}' needs logits, got None")
            if name == "group":
                source = embeddings
                if module.w_features == "bnneck":
                    if neck is None:
                        raise ValueError("loss 'group' has w_features=bnneck but the model gave no BNNeck output")
                    source = neck
                nll, ce = module.terms(source, logits, labels)
                value = module.propagation_weight * nll + module.ce_weight * ce
                parts["group.nll"], parts["group.ce"] = float(nll.detach()), float(ce.detach())
            elif needs == "logits":
                value = module(logits, labels)
            else:
                value = module(embeddings, labels)
            parts[name] = float(value.detach())
            weighted = self.weights[name] * value
            total = weighted if total is None else total + weighted
        assert total is not None
        return total, parts


def build_loss(spec: Mapping[str, Any], num_classes: int) -> CombinedLoss:
    """Build a CombinedLoss from e.g. {"group": {"weight": 1.0, "temperature": 80}, "triplet": {"margin": 0.3}}.

    Each key names a loss (group, ce, triplet, ranked_list, center); its mapping holds "weight"
    (default 1.0) and the loss's constructor options. An unknown loss or option, a missing or
    negative weight, or an option the loss rejects raises ConfigError naming the key.
    """
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(f"loss: expected a non-empty mapping of loss names to options, got {spec!r}")
    terms: dict[str, nn.Module] = {}
    weights: dict[str, float] = {}
    for name, options in spec.items():
        if name not in LOSSES:
            raise ConfigError(f"loss.{name}: unknown loss (choose from {', '.join(LOSSES)})")
        options = {} if options is None else options
        if not isinstance(options, Mapping):
            raise ConfigError(f"loss.{name}: expected a mapping of options, got {options!r}")
        cls, _, takes_classes = LOSSES[name]
        kwargs = dict(options)
        weight = kwargs.pop("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ConfigError(f"loss.{name}.weight: expected a number >= 0, got {weight!r}")
        if name == "group":
            try:
                kwargs = group_options(kwargs)
            except KeyError as err:
                raise ConfigError(f"loss.group.preset: {err.args[0]}") from None
        allowed = _options(cls)
        for key in kwargs:
            if key not in allowed:
                extra = "weight, preset" if name == "group" else "weight"
                raise ConfigError(
                    f"loss.{name}.{key}: unknown option (choose from {extra}, {', '.join(sorted(allowed))})"
                )
        try:
            terms[name] = cls(num_classes=num_classes, **kwargs) if takes_classes else cls(**kwargs)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"loss.{name}: {err}") from err
        weights[name] = float(weight)
    return CombinedLoss(terms, weights)
