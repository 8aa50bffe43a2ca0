"""`reid test` on the retrieval benchmarks (CUB-200-2011, Cars196, SOP, In-Shop): Recall@K,
MAP@R and NMI under the protocol their data set names (reid.evaluation.protocol)."""

from __future__ import annotations

import click

from .common import fail, format_metrics_table


def run_retrieval_test(run, protocol, opts: dict) -> None:
    """Prints the table of reid.inference.checkpoint_eval.evaluate_retrieval; writes test_metrics.json."""
    from reid.evaluation.report import write_json
    from reid.inference.checkpoint_eval import evaluate_retrieval

    try:
        record, result, settings = evaluate_retrieval(run, protocol, opts)
    except ValueError as exc:
        raise fail(str(exc)) from None
    click.echo(format_metrics_table({record["label"]: record}, [f"recall@{k}" for k in protocol.ks] + ["map@r", "nmi"]))
    click.echo(
        f"protocol {protocol.name} on {run.data.name}: {record['num_valid']} queries, "
        f"{record['num_skipped']} skipped (no other image of their class)"
    )
    for note in result.notes:
        click.echo(f"note: {note}")
    seconds = record["extract_s"] + record["post_s"]
    click.echo(f"strategies: {settings.describe()}; post: {settings.describe_post()}; {seconds:.1f}s")
    write_json(record, run.folder / "test_metrics.json")
    click.echo(f"metrics written to {run.folder / 'test_metrics.json'}")
