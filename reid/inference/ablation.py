"""The Group Loss++ ablation: baseline, each inference strategy alone, and all together.

Features are computed once per distinct (model, flip, scales, pool_lambda, leaky_slope) through a
`FeatureBank`; beta mixing, query expansion, re-ranking and feature ensembles reuse them. Each
row reports the seconds its strategy costs when run on its own: the extraction it needs (charged
even when the cached features are reused) plus its post-processing (QE, re-ranking, distances).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from reid.data.datasets.base import Record
from reid.engine.evaluate import FeatureBank, PostProcess, score_features
from reid.io.atomic import write_text

from .features import TestTimeOptions

Models = Sequence[tuple[str, torch.nn.Module]]

# The value each strategy is tried with when the user did not choose one (authors' ranges where known).
DEFAULT_OPTIONS = TestTimeOptions(flip=True, scales=(1.0, 1.1), pool_lambda=0.5, leaky_slope=0.1, beta=0.002)
DEFAULT_POST = PostProcess(qe="alpha", rerank=True)


@dataclass(frozen=True)
class Setting:
    """One row: test-time options, post-processing and which models (a key of the model sets)."""

    name: str
    options: TestTimeOptions = TestTimeOptions()
    post: PostProcess = PostProcess()
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


def strategy_values(user: TestTimeOptions, post: PostProcess) -> tuple[TestTimeOptions, PostProcess]:
    """The options to try each strategy with: the user's where set, else `DEFAULT_OPTIONS/POST`."""
    plain, plain_post = TestTimeOptions(), PostProcess()
    values = {
        f.name: getattr(user, f.name)
        if getattr(user, f.name) != getattr(plain, f.name)
        else getattr(DEFAULT_OPTIONS, f.name)
        for f in dataclasses.fields(TestTimeOptions)
    }
    values["flip"] = True
    post_values = {f.name: getattr(post, f.name) for f in dataclasses.fields(PostProcess)}
    post_values["qe"] = post.qe if post.qe != plain_post.qe else DEFAULT_POST.qe
    post_values["rerank"] = True
    return TestTimeOptions(**values), PostProcess(**post_values)


def post_processing_available() -> dict[str, bool]:
    """Whether the query-expansion and re-ranking modules are installed in this build."""
    return {
        "qe": importlib.util.find_spec("reid.inference.query_expansion") is not None,
        "rerank": importlib.util.find_spec("reid.inference.rerank") is not None,
    }


def ablation_settings(
    user: TestTimeOptions = TestTimeOptions(),
    post: PostProcess = PostProcess(),
    ensemble_modes: Sequence[str] = (),
    ensemble_mode: str = "weights",
    available: dict[str, bool] | None = None,
) -> list[Setting]:
    """Baseline, each strategy alone, then all together (with and without the ensemble if any).

    `available` (default: `post_processing_available()`) drops the QE / re-ranking rows when
    their modules are missing.
    """
    available = post_processing_available() if available is None else available
    full, full_post = strategy_values(user, post)
    if not available.get("qe", True):
        full_post = replace(full_post, qe="none")
    if not available.get("rerank", True):
        full_post = replace(full_post, rerank=False)
    plain = TestTimeOptions()
    no_qe = replace(full_post, qe="none", rerank=False)
    settings = [
        Setting("baseline"),
        Setting("flip", TestTimeOptions(flip=True)),
        Setting("multiscale " + ",".join(f"{s:g}" for s in full.scales), replace(plain, scales=full.scales)),
        Setting(f"pool mix lambda={full.pool_lambda:g}", replace(plain, pool_lambda=full.pool_lambda)),
        Setting(f"leaky slope={full.leaky_slope:g}", replace(plain, leaky_slope=full.leaky_slope)),
        Setting(f"beta mixing beta={full.beta:g}", replace(plain, beta=full.beta)),
    ]
    if available.get("qe", True):
        settings.append(Setting("alpha-QE", post=replace(no_qe, qe="alpha")))
        settings.append(Setting("DBA", post=replace(no_qe, qe="dba")))
    if available.get("rerank", True):
        settings.append(Setting("re-ranking", post=replace(no_qe, rerank=True)))
    settings += [Setting(f"ensemble ({mode})", models=mode) for mode in ensemble_modes]
    if ensemble_modes:
        settings.append(Setting("all, single model", full, full_post))
        settings.append(Setting(f"all + ensemble ({ensemble_mode})", full, full_post, ensemble_mode))
    else:
        settings.append(Setting("all together", full, full_post))
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
        q, g, extract_s = bank.features(models, setting.options, mode)
        result, _, post_s = score_features(q, g, query, gallery, setting.options.metric, setting.post)
        describe = {"options": setting.options.to_dict(), "post": setting.post.to_dict(), "models": setting.models}
        rows.append(AblationRow(setting.name, result.as_dict(), extract_s, post_s, describe))
        if log:
            log(f"{setting.name}: rank1 {100 * rows[-1].metrics['rank1']:.1f}% in {rows[-1].seconds:.1f}s")
    return rows


def format_ablation_table(rows: Sequence[AblationRow]) -> str:
    """An aligned text table: rank-1, mAP, mINP (percent), seconds and the change of mAP."""
    width = max(len("strategy"), *(len(r.name) for r in rows))
    head = f"{'strategy':<{width}} {'rank1':>7} {'mAP':>7} {'mINP':>7} {'dmAP':>7} {'seconds':>8}"
    base = rows[0].metrics["mAP"] if rows else 0.0
    lines = [head, "-" * len(head)]
    for r in rows:
        m = r.metrics
        lines.append(
            f"{r.name:<{width}} {100 * m['rank1']:>6.1f}% {100 * m['mAP']:>6.1f}% {100 * m['mINP']:>6.1f}% "
            f"{100 * (m['mAP'] - base):>+6.1f} {r.seconds:>8.2f}"
        )
    return "\n".join(lines)


def ablation_json(rows: Sequence[AblationRow], extra: dict | None = None) -> dict:
    return {
        **(extra or {}),
        "rows": [
            dict(name=r.name, **r.metrics, extract_s=r.extract_s, post_s=r.post_s, seconds=r.seconds, **r.setting)
            for r in rows
        ],
    }


def write_ablation(path: str | Path, rows: Sequence[AblationRow], extra: dict | None = None) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(ablation_json(rows, extra), indent=2))
