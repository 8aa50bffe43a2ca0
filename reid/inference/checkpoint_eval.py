"""Evaluate a trained checkpoint on a benchmark (what `reid test` does), through the retrieval pipeline.

`prepare` loads the model, its run's `test:` settings merged with the caller's, the data set and
the snapshot models of an ensemble; `evaluate` runs one setting, `ablation` the Group Loss++ table;
`write_reports` writes test_metrics.json, cmc.png and ranked-list images into the output folder.
On the retrieval benchmarks (CUB-200-2011, Cars196, SOP, In-Shop) `evaluate_retrieval` scores
Recall@K, MAP@R and NMI under the protocol the data set names (reid.evaluation.protocol).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reid.config import Config
from reid.errors import ReidError
from reid.io.run_folder import RunFolder
from reid.models.loading import load_model, model_from_checkpoint
from reid.test_time import TestConfig

from .ensemble import discover_snapshots, load_snapshots, resolve_snapshots, weight_averaged_model
from .pipeline import FeatureBank, Models


@dataclass
class CheckpointEval:
    """Everything one `reid test` run needs, resolved and loaded."""

    checkpoint: str
    config: Config
    settings: TestConfig
    data: Any  # a reid.data.datasets ReidDataset
    folder: Path
    bank: FeatureBank
    model_sets: dict[str, Models]
    snapshots: list[Path] = field(default_factory=list)


def prepare(
    checkpoint: str,
    device: torch.device,
    changes: Callable[[TestConfig], TestConfig] = lambda s: s,
    dataset: str | None = None,
    data_root: str | None = None,
    batch_size: int = 128,
    out: str | None = None,
    ablation: bool = False,
    skip_bad: bool = False,
    verify_images: bool = False,
) -> CheckpointEval:
    """Load the checkpoint (file or run folder); `changes` maps the run's `test:` settings to the ones to use.

    skip_bad / verify_images: how the data set's bad images are handled (reid.data.datasets.build_dataset).
    """
    from reid.data.datasets import build_dataset

    model, pre, config, _ = load_model(checkpoint, device)
    settings = changes(config.test)
    if settings.ensemble:  # snapshot files are checked before any data is read
        snapshots = resolve_snapshots(checkpoint, settings.ensemble)
    else:
        found = discover_snapshots(checkpoint) if ablation else []
        snapshots = found if len(found) >= 2 else []
    data = build_dataset(
        dataset or config.data.dataset, data_root or config.data.root, skip_bad=skip_bad, verify_images=verify_images
    )
    path = Path(checkpoint)
    folder = Path(out) if out else (path if path.is_dir() else path.parent)
    folder.mkdir(parents=True, exist_ok=True)
    bank = FeatureBank(data.query, data.gallery, pre, device, batch_size=batch_size)
    model_sets: dict[str, Models] = {"single": [(str(RunFolder.resolve(checkpoint)[1].resolve()), model)]}
    if snapshots:
        model_sets.update(_ensemble_sets(snapshots, pre, device))
    return CheckpointEval(checkpoint, config, settings, data, folder, bank, model_sets, snapshots)


def _ensemble_sets(paths: list[Path], pre, device) -> dict[str, Models]:
    """Model lists per ensemble mode: one weight-averaged model, or every snapshot's model."""
    states, snap_pre = load_snapshots(paths, device)
    if snap_pre.to_dict() != pre.to_dict():
        raise ReidError(f"--ensemble: {paths[0]} uses a different preprocessing than the -m model")
    each = [(str(p.resolve()), model_from_checkpoint(s, device=device)) for p, s in zip(paths, states)]
    averaged = [("weights:" + ",".join(str(p.resolve()) for p in paths), weight_averaged_model(states, device))]
    return {"weights": averaged, "features": each, "concat": each}


def evaluate(run: CheckpointEval) -> tuple[dict, Any, Any]:
    """One setting through the pipeline: (JSON record, RankResult, final distance matrix)."""
    settings, mode = run.settings, run.settings.ensemble_mode
    models = run.model_sets[mode if settings.ensemble else "single"]
    try:
        result, distmat, extract_s, post_s = run.bank.evaluate(
            models, settings, "concat" if mode == "concat" else "features"
        )
    except ModuleNotFoundError as exc:
        raise ReidError(f"--qe/--rerank: {exc.name} is not available in this installation") from None
    record = _record(run, settings, len(models), result, extract_s, post_s, {"cmc": [float(v) for v in result.cmc]})
    return record, result, distmat


def _record(run: CheckpointEval, settings: TestConfig, num_models: int, result, extract_s, post_s, extra: dict) -> dict:
    """The JSON record of one evaluation: what was evaluated, how, the metrics (+ `extra`) and the times."""
    mode = settings.ensemble_mode
    return {
        "dataset": run.data.name,
        "checkpoint": str(run.checkpoint),
        "label": Path(run.checkpoint).name + (f" ensemble({mode}, {num_models})" if settings.ensemble else ""),
        **result.as_dict(),
        **extra,
        "options": settings.feature_dict(),
        "post": settings.post_dict(),
        "ensemble": {"snapshots": [str(p) for p in run.snapshots], "mode": mode} if settings.ensemble else None,
        "extract_s": extract_s,
        "post_s": post_s,
    }


def retrieval_settings(settings: TestConfig, protocol: Any, opts: dict, cfg: TestConfig) -> TestConfig:
    """Re-ranking k1 / k2 / lambda: the protocol's defaults (50, 20, 0.94) unless set in `opts` (the
    command line, None = not given) or changed from the re-ID default in the run's `test:` section `cfg`."""
    from reid.test_time import DEFAULTS

    keys = ("k1", "k2", "lambda_value")
    changes = {k: getattr(protocol, k) for k in keys if opts.get(k) is None and getattr(cfg, k) == getattr(DEFAULTS, k)}
    return settings.replace(**changes)


def evaluate_retrieval(run: CheckpointEval, protocol: Any, opts: dict) -> tuple[dict, Any, TestConfig]:
    """Features of the test split, then Recall@K, MAP@R, NMI: (JSON record, RetrievalResult, settings used).

    A re-ranking size the data cannot hold raises ValueError (the caller shows it as a usage error).
    """
    from .pipeline import score_retrieval

    settings = retrieval_settings(run.settings, protocol, opts, run.config.test)
    mode = settings.ensemble_mode
    models = run.model_sets[mode if settings.ensemble else "single"]
    data = run.data
    try:
        q, g, extract_s = run.bank.features(models, settings, "concat" if mode == "concat" else "features")
        result, post_s = score_retrieval(q, g, data.query, data.gallery, protocol, settings)
    except ModuleNotFoundError as exc:
        raise ReidError(f"--qe/--rerank: {exc.name} is not available in this installation") from None
    extra = {"protocol": protocol.name, "notes": result.notes}
    return _record(run, settings, len(models), result, extract_s, post_s, extra), result, settings


def ablation(run: CheckpointEval, log: Callable[[str], None] | None = None) -> list:
    """The Group Loss++ ablation rows; written to <folder>/ablation.json."""
    from .ablation import ablation_settings, run_ablation, write_ablation

    modes = [m for m in ("weights", "features", "concat") if m in run.model_sets]
    settings = ablation_settings(run.settings, modes, run.settings.ensemble_mode)
    rows = run_ablation(run.bank, run.model_sets, settings, run.data.query, run.data.gallery, log=log)
    extra = {"dataset": run.data.name, "checkpoint": str(run.checkpoint)}
    if len(run.model_sets) > 1:
        extra["snapshots"] = [name for name, _ in run.model_sets["features"]]
    write_ablation(run.folder / "ablation.json", rows, extra)
    return rows


def write_reports(run: CheckpointEval, record: dict, result, distmat, seed: int = 0) -> list[str]:
    """test_metrics.json (atomic), the CMC curve (cmc.png) and ranked-list images; returns what was written."""
    from reid.evaluation.report import plot_cmc, save_ranked_lists, write_json

    folder, lines = run.folder, []
    write_json(record, folder / "test_metrics.json")
    plot_cmc({Path(record["checkpoint"]).name: result.cmc}, folder / "cmc.png", title=f"CMC, {record['dataset']}")
    lines.append(f"metrics written to {folder / 'test_metrics.json'}, CMC curve to {folder / 'cmc.png'}")
    count = run.settings.ranked_lists
    if count:
        data = run.data
        paths = save_ranked_lists(
            distmat, data.query, data.gallery, folder / "ranked_lists", num_queries=count, seed=seed
        )
        lines.append(f"{len(paths)} ranked lists written to {folder / 'ranked_lists'}")
    return lines
