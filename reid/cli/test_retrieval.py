"""`reid test` on the retrieval benchmarks (CUB-200-2011, Cars196, SOP, In-Shop): Recall@K,
MAP@R and NMI under the protocol their data set names (reid.evaluation.protocol)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import fail, format_metrics_table


def retrieval_settings(settings, protocol, opts: dict, cfg):
    """Re-ranking k1 / k2 / lambda: the protocol's defaults (50, 20, 0.94) unless set on the
    command line or changed from the re-ID default in the run's `test:` section."""
    from reid.test_time import DEFAULTS

    keys = ("k1", "k2", "lambda_value")
    changes = {k: getattr(protocol, k) for k in keys if opts.get(k) is None and getattr(cfg, k) == getattr(DEFAULTS, k)}
    return settings.replace(**changes)


def run_retrieval_test(run, protocol, opts: dict) -> None:
    """Features of the test split, then Recall@K, MAP@R, NMI; prints a table, writes test_metrics.json."""
    from reid.errors import ReidError
    from reid.evaluation.report import write_json
    from reid.inference.pipeline import score_retrieval

    settings = retrieval_settings(run.settings, protocol, opts, run.config.test)
    mode = settings.ensemble_mode
    models = run.model_sets[mode if settings.ensemble else "single"]
    data = run.data
    try:
        q, g, extract_s = run.bank.features(models, settings, "concat" if mode == "concat" else "features")
        result, post_s = score_retrieval(q, g, data.query, data.gallery, protocol, settings)
    except ModuleNotFoundError as exc:
        raise ReidError(f"--qe/--rerank: {exc.name} is not available in this installation") from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    label = Path(run.checkpoint).name + (f" ensemble({mode}, {len(models)})" if settings.ensemble else "")
    metrics = result.as_dict()
    click.echo(format_metrics_table({label: metrics}, [f"recall@{k}" for k in protocol.ks] + ["map@r", "nmi"]))
    click.echo(
        f"protocol {protocol.name} on {data.name}: {metrics['num_valid']} queries, "
        f"{metrics['num_skipped']} skipped (no other image of their class)"
    )
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(f"strategies: {settings.describe()}; post: {settings.describe_post()}; {extract_s + post_s:.1f}s")
    record = {
        "dataset": data.name,
        "checkpoint": str(run.checkpoint),
        "label": label,
        **metrics,
        "protocol": protocol.name,
        "notes": result.notes,
        "options": settings.feature_dict(),
        "post": settings.post_dict(),
        "ensemble": {"snapshots": [str(p) for p in run.snapshots], "mode": mode} if settings.ensemble else None,
        "extract_s": extract_s,
        "post_s": post_s,
    }
    write_json(record, run.folder / "test_metrics.json")
    click.echo(f"metrics written to {run.folder / 'test_metrics.json'}")
