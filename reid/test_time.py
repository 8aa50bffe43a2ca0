"""The one test-time schema: every option of `reid test`, `reid extract` and `reid rerank`.

`TestConfig` owns each option's default, its help text and its validation; it is the `test:`
section of a run config, the click options of the three commands are generated from its fields
(`click_options`), and the retrieval pipeline (reid.inference.pipeline) takes it whole.
The strategies are described in docs/method.md section 4 (Group Loss++ inference).

Feature switches (flip, scales, pool_lambda, leaky_slope, beta) change the features; post-processing
(qe*, rerank, k1, k2, lambda_value) changes the distances; ensemble* and ranked_lists belong to
`reid test` only.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from reid.config_fields import check_value
from reid.errors import ConfigError

QE_MODES = ("none", "alpha", "dba")
ENSEMBLE_MODES = ("weights", "features", "concat")
FEATURE_FIELDS = ("flip", "scales", "pool_lambda", "leaky_slope", "beta")
POST_FIELDS = ("qe", "qe_k", "qe_alpha", "rerank", "k1", "k2", "lambda_value")


def _opt(default: Any, help: str, flag: str | None = None, choices: tuple | None = None, **bounds: float | None) -> Any:
    """A field with its checks (reid.config_fields metadata: min, max, above, below, choices), its
    CLI help and its flag name when it differs from the field's."""
    meta = {"min": None, "max": None, "above": None, "below": None, **bounds, "choices": choices}
    meta.update(help=help, flag=flag)
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TestConfig:
    """Test-time strategies; the defaults are plain inference."""

    __test__ = False  # not a pytest test class

    flip: bool = _opt(False, "Average with the horizontal mirror.")
    scales: list[float] = _opt([1.0], "Input scales to average, e.g. 1.0,1.1 (each in (0, 4]).", above=0.0, max=4.0)
    pool_lambda: float | None = _opt(
        None, "Test-time pooling lambda*max + (1-lambda)*avg, in [0, 1].", min=0.0, max=1.0
    )
    leaky_slope: float | None = _opt(
        None, "Leaky slope of the last block's final activation, in [0, 1].", min=0.0, max=1.0
    )
    beta: float = _opt(0.0, "Embedding mixing e = f/|f| + beta*f (authors: 0.0005-0.004).", min=0.0)
    qe: str = _opt(
        "none", "Query expansion before re-ranking: alpha-QE (queries and gallery) or DBA.", choices=QE_MODES
    )
    qe_k: int = _opt(10, "Neighbours used by query expansion, the feature itself included.", min=1)
    qe_alpha: float = _opt(3.0, "Similarity exponent of query expansion.", min=0.0)
    rerank: bool = _opt(False, "k-reciprocal re-ranking (Zhong et al. 2017).")
    k1: int = _opt(20, "Re-ranking k1.", min=1)
    k2: int = _opt(6, "Re-ranking k2.", min=1)
    lambda_value: float = _opt(
        0.3, "Re-ranking weight of the original distance, in [0, 1].", flag="--lambda", min=0.0, max=1.0
    )
    ensemble: list[str] = _opt([], "Snapshots of the run to combine, e.g. epoch_010.pt,epoch_015.pt,last.pt.")
    ensemble_mode: str = _opt("weights", "How to combine the snapshots.", choices=ENSEMBLE_MODES)
    ranked_lists: int = _opt(8, "Ranked-list images of this many random queries.", min=0)

    def __post_init__(self) -> None:
        """Every value converted and checked by reid.config_fields, as a YAML `test:` section is at load."""
        if isinstance(self.scales, (int, float)) and not isinstance(self.scales, bool):
            self.scales = [self.scales]
        if isinstance(self.ensemble, str):
            self.ensemble = [self.ensemble]
        hints = typing.get_type_hints(TestConfig)
        for spec_ in dataclasses.fields(self):
            value = getattr(self, spec_.name)
            value = list(value) if isinstance(value, tuple) else value
            setattr(self, spec_.name, check_value(value, spec_, hints[spec_.name], f"test.{spec_.name}"))
        if not self.scales:
            raise ConfigError("test.scales: need one or more scales in (0, 4], got []")
        self.ensemble = [name.strip() for name in self.ensemble if name.strip()]

    # -- views ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def feature_dict(self) -> dict[str, Any]:
        """The feature switches only (what makes the features what they are)."""
        return {name: getattr(self, name) for name in FEATURE_FIELDS}

    def post_dict(self) -> dict[str, Any]:
        """The query expansion and re-ranking options only."""
        return {name: getattr(self, name) for name in POST_FIELDS}

    def replace(self, **changes: Any) -> TestConfig:
        """A validated copy with `changes`."""
        return dataclasses.replace(self, **changes)

    @property
    def metric(self) -> str:
        """The distance to use (reid.evaluation.distance): cosine for unit-norm features,
        half squared Euclidean when beta > 0 (the mixed features are not unit length)."""
        return "half_squared_euclidean" if self.beta > 0 else "cosine"

    def network_key(self) -> tuple:
        """The switches that change the network passes (beta is applied afterwards)."""
        return (self.flip, tuple(self.scales), self.pool_lambda, self.leaky_slope)

    def describe(self) -> str:
        """The feature switches in short, e.g. "flip+scales=1,1.1"; "none" for plain inference."""
        parts = ["flip"] if self.flip else []
        if list(self.scales) != [1.0]:
            parts.append("scales=" + ",".join(f"{s:g}" for s in self.scales))
        if self.pool_lambda is not None:
            parts.append(f"pool_lambda={self.pool_lambda:g}")
        if self.leaky_slope is not None:
            parts.append(f"leaky={self.leaky_slope:g}")
        if self.beta:
            parts.append(f"beta={self.beta:g}")
        return "+".join(parts) or "none"

    def describe_post(self) -> str:
        """The post-processing in short, e.g. "qe=alpha(k=10,a=3)+rerank(k1=20,k2=6,l=0.3)"."""
        parts = [f"qe={self.qe}(k={self.qe_k},a={self.qe_alpha:g})"] if self.qe != "none" else []
        if self.rerank:
            parts.append(f"rerank(k1={self.k1},k2={self.k2},l={self.lambda_value:g})")
        return "+".join(parts) or "none"


DEFAULTS = TestConfig()


def click_options(
    names: tuple[str, ...] | list[str], defaults: dict[str, Any] | None = None, from_config: bool = False
):
    """A decorator adding one click option per named field of TestConfig.

    from_config=True: every option defaults to None ("not given"), to be merged over a run's
    `test:` section with `merge_cli`; else the option's default is the schema's (or `defaults`).
    Lists are given comma-separated.
    """
    import click

    specs = {f.name: f for f in dataclasses.fields(TestConfig)}
    defaults = defaults or {}

    def decorate(command):
        for name in reversed(list(names)):
            spec = specs[name]
            default = defaults.get(name, getattr(DEFAULTS, name))
            flag = spec.metadata["flag"] or "--" + name.replace("_", "-")
            shown = ",".join(map(str, default)) if isinstance(default, list) else default
            help = spec.metadata["help"] + (
                f"  [config: test.{name}; default {shown}]" if from_config and shown not in (None, [], "") else ""
            )
            kwargs: dict[str, Any] = {"help": help, "show_default": not from_config}
            if isinstance(default, bool):
                decls = [f"{flag}/--no-{flag[2:]}", name]
                kwargs["default"] = None if from_config else default
            else:
                decls = [flag, name]
                kwargs["default"] = None if from_config or default is None else shown
                if spec.metadata["choices"]:
                    kwargs["type"] = click.Choice(spec.metadata["choices"])
                elif isinstance(default, list):
                    kwargs["type"] = str
                elif spec.type in ("int",):
                    kwargs["type"] = int
                else:
                    kwargs["type"] = float
            command = click.option(*decls, **kwargs)(command)
        return command

    return decorate


def merge_cli(base: TestConfig, params: dict[str, Any]) -> TestConfig:
    """`base` with every option the user gave (not None) from a command's parameters; validated.

    Comma-separated list options are split here; a bad number is a one-line ConfigError naming the flag.
    """
    specs = {f.name: f for f in dataclasses.fields(TestConfig)}
    changes = {}
    for name, value in params.items():
        if name not in specs or value is None:
            continue
        if isinstance(getattr(DEFAULTS, name), list) and isinstance(value, str):
            value = _split(name, value, float if name == "scales" else str)
        changes[name] = value
    return base.replace(**changes)


def _split(name: str, text: str, kind: type) -> list:
    flag = "--" + name.replace("_", "-")
    try:
        values = [kind(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected comma-separated numbers, e.g. 1.0,1.1") from None
    if not values:
        raise ConfigError(f"{flag}: give at least one value")
    return values
