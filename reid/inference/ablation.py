"""The Group Loss++ ablation: baseline, each inference strategy alone, and all together.

Features are computed once per distinct (model, flip, scales, pool_lambda, leaky_slope) through the
pipeline's `FeatureBank`; beta mixing, query expansion, re-ranking and feature ensembles reuse them.
Each row reports the seconds its strategy costs when run on its own: the extraction it needs
(charged even when the cached features are reused) plus its post-processing (QE, re-ranking, distances).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reid.data.datasets.base import Record
from reid.io.atomic import write_text
from reid.test_time import DEFAULTS, FEATURE_FIELDS, POST_FIELDS, TestConfig

from .pipeline import FeatureBank, Models

# The value each strategy is tried with when the user did not choose one (authors' ranges where known).
TRY_VALUES = TestConfig(flip=True, scales=[1.0, 1.1], pool_lambda=0.5, leaky_slope=0.1, beta=0.002, qe="alpha")


@dataclass(frozen=True)
class Setting:
    """One row: its test-time settings and which models (a key of the model sets)."""

    name: str
    settings: TestConfig = field(default_factory=TestConfig)
    models: str = "single"  # "single" or an ensemble mode: weights | features | concat


@dataclass
class AblationRow:
    name: str
    metrics: dict
    extract_s: float
    post_s: float
    setting: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.extract_s + self.post_s


def strategy_values(user: TestConfig = DEFAULTS) -> TestConfig:
    """Every strategy on, each with the user's value where set (differs from the default), else `TRY_VALUES`."""
    values = {
        name: getattr(user, name) if getattr(user, name) != getattr(DEFAULTS, name) else getattr(TRY_VALUES, name)
        for name in FEATURE_FIELDS + POST_FIELDS
    }
    return TestConfig(**{**values, "flip": True, "rerank": True})


def ablation_settings(
    user: TestConfig = DEFAULTS,
    ensemble_modes: Sequence[str] = (),
    ensemble_mode: str = "weights",
    with_post: bool = True,
) -> list[Setting]:
    """Baseline, each strategy alone, then all together (with and without the ensemble if any).

    with_post=False leaves out the query-expansion and re-ranking rows (and turns them off in "all").
    """
    full = strategy_values(user)
    if not with_post:
        full = full.replace(qe="none", rerank=False)
    post = TestConfig(**full.post_dict()).replace(qe="none", rerank=False)
    settings = [
        Setting("baseline"),
        Setting("flip", TestConfig(flip=True)),
        Setting("multiscale " + ",".join(f"{s:g}" for s in full.scales), TestConfig(scales=full.scales)),
        Setting(f"pool mix lambda={full.pool_lambda:g}", TestConfig(pool_lambda=full.pool_lambda)),
        Setting(f"leaky slope={full.leaky_slope:g}", TestConfig(leaky_slope=full.leaky_slope)),
        Setting(f"beta mixing beta={full.beta:g}", TestConfig(beta=full.beta)),
    ]
    if with_post:
        settings.append(Setting("alpha-QE", post.replace(qe="alpha")))
        settings.append(Setting("DBA", post.replace(qe="dba")))
        settings.append(Setting("re-ranking", post.replace(rerank=True)))
    settings += [Setting(f"ensemble ({mode})", models=mode) for mode in ensemble_modes]
    if ensemble_modes:
        settings.append(Setting("all, single model", full))
        settings.append(Setting(f"all + ensemble ({ensemble_mode})", full, ensemble_mode))
    else:
        settings.append(Setting("all together", full))
    return settings


def run_ablation(
    bank: FeatureBank,
    model_sets: dict[str, Models],
    settings: Sequence[Setting],
    query: Sequence[Record],
    gallery: Sequence[Record],
    log: Callable[[str], None] | None = None,
) -> list[AblationRow]:
    """Evaluate every setting; `model_sets` maps "single" / ensemble modes to (name, model) lists."""
    rows = []
    unique = {id(model): model for models in model_sets.values() for _, model in models}
    bank.warm_up(list(unique.values()))
    for setting in settings:
        models = model_sets[setting.models]
        mode = setting.models if setting.models in ("features", "concat") else "features"
        result, _, extract_s, post_s = bank.evaluate(models, setting.settings, mode)
        describe = {
            "options": setting.settings.feature_dict(),
            "post": setting.settings.post_dict(),
            "models": setting.models,
        }
        rows.append(AblationRow(setting.name, result.as_dict(), extract_s, post_s, describe))
        if log:
            log(f"{setting.name}: rank1 {100 * rows[-1].metrics['rank1']:.1f}% in {rows[-1].seconds:.1f}s")
    return rows


def ablation_json(rows: Sequence[AblationRow], extra: dict | None = None) -> dict:
    return {
        **(extra or {}),
        "rows": [
            dict(name=r.name, **r.metrics, extract_s=r.extract_s, post_s=r.post_s, seconds=r.seconds, **r.setting)
            for r in rows
        ],
    }


def write_ablation(path: str | Path, rows: Sequence[AblationRow], extra: dict | None = None) -> None:
    """ablation.json, written atomically."""
    write_text(path, json.dumps(ablation_json(rows, extra), indent=2))
