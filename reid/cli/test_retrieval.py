"""`reid test` on the retrieval benchmarks (CUB-200-2011, Cars196, SOP, In-Shop): Recall@K,
MAP@R and NMI under the protocol their data set names (reid.evaluation.protocol)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from .common import fail, format_metrics_table


def retrieval_post(post, protocol, opts: dict, cfg):
    """Re-ranking k1 / k2 / lambda: the protocol's defaults (50, 20, 0.94) unless set on the
    command line or changed from the re-ID default in the config."""
    from reid.config import TestConfig

    default = TestConfig()
    changes = {}
    for key in ("k1", "k2", "lambda_value"):
        if opts.get(key) is None and getattr(cfg, key) == getattr(default, key):
            changes[key] = getattr(protocol, key)
    return replace(post, **changes)


def run_retrieval_test(bank, models, label: str, data, protocol, options, post, folder: Path, record: dict) -> None:
    """Features of the test split, then Recall@K, MAP@R, NMI; prints a table and writes test_metrics.json."""
    from reid.engine.evaluate import score_retrieval
    from reid.errors import ReidError
    from reid.evaluation.report import write_json

    q, g, extract_s = bank.features(models, options, "concat" if record.get("mode") == "concat" else "features")
    try:
        result, post_s = score_retrieval(q, g, data.query, data.gallery, protocol, options.metric, post)
    except ModuleNotFoundError as exc:
        raise ReidError(f"--qe/--rerank: {exc.name} is not available in this installation") from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    metrics = result.as_dict()
    columns = [f"recall@{k}" for k in protocol.ks] + ["map@r", "nmi"]
    click.echo(format_metrics_table({label: metrics}, columns))
    click.echo(
        f"protocol {protocol.name} on {data.name}: {metrics['num_valid']} queries, "
        f"{metrics['num_skipped']} skipped (no other image of their class)"
    )
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(f"strategies: {options.describe()}; post: {post.describe()}; {extract_s + post_s:.1f}s")
    record.update(
        metrics,
        protocol=protocol.name,
        notes=result.notes,
        options=options.to_dict(),
        post=post.to_dict(),
        extract_s=extract_s,
        post_s=post_s,
    )
    write_json(record, folder / "test_metrics.json")
    click.echo(f"metrics written to {folder / 'test_metrics.json'}")
