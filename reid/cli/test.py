"""`reid test -m CHECKPOINT`: evaluate a trained model with the Group Loss++ inference strategies."""

from __future__ import annotations

import click

from reid.test_time import click_options

from .common import bad_image_options, device_option, format_metrics_table, pick_device

# Every test-time option of the schema; each defaults to the run's `test:` section.
OPTIONS = (
    "flip", "scales", "pool_lambda", "leaky_slope", "beta", "qe", "qe_k", "qe_alpha", "rerank", "k1", "k2",
    "lambda_value", "ensemble", "ensemble_mode", "ranked_lists",
)  # fmt: skip


@click.command()
@click.option("-m", "--model", "checkpoint", required=True, type=click.Path(), help="Checkpoint file or run folder.")
@click.option("--dataset", help="Benchmark name (default: the one the model was trained on).")
@click.option("--data-root", help="Data root (default: the training config's data.root).")
@click_options(OPTIONS, from_config=True)
@click.option("--ablation", is_flag=True, help="Table: baseline, each strategy alone, all together (JSON too).")
@click.option("--seed", default=0, show_default=True, help="Seed for choosing the ranked-list queries.")
@click.option("--batch-size", default=128, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: the run folder).")
@bad_image_options
@device_option
def test(
    checkpoint: str,
    dataset,
    data_root,
    batch_size: int,
    out,
    device: str,
    ablation: bool,
    seed: int,
    skip_bad: bool,
    verify_images: bool,
    **opts,
):
    """Evaluate CMC rank-1/5/10, mAP and mINP under the Market/Duke protocol; on CUB-200-2011,
    Cars196, SOP and In-Shop Recall@K, MAP@R and NMI under their retrieval protocol."""
    from reid.evaluation.tables import format_ablation_table
    from reid.inference import checkpoint_eval
    from reid.test_time import merge_cli

    run = checkpoint_eval.prepare(
        checkpoint,
        pick_device(device),
        lambda base: merge_cli(base, opts),
        dataset,
        data_root,
        batch_size,
        out,
        ablation,
        skip_bad=skip_bad,
        verify_images=verify_images,
    )
    from reid.evaluation.protocol import protocol_for

    protocol = protocol_for(run.data.name)
    if protocol.retrieval:
        from .test_retrieval import run_retrieval_test

        if ablation:
            name = run.data.name
            raise click.ClickException(f"--ablation: only the re-ID protocol so far, not {name}'s retrieval protocol")
        return run_retrieval_test(run, protocol, opts)
    if ablation:
        rows = checkpoint_eval.ablation(run, log=lambda s: click.echo(s, err=True))
        click.echo(format_ablation_table(rows))
        click.echo(f"ablation written to {run.folder / 'ablation.json'}")
        return
    record, result, distmat = checkpoint_eval.evaluate(run)
    click.echo(format_metrics_table({record["label"]: record}))
    click.echo(f"{record['num_valid']} valid queries, {record['num_skipped']} skipped (no true match)")
    seconds = record["extract_s"] + record["post_s"]
    click.echo(f"strategies: {run.settings.describe()}; post: {run.settings.describe_post()}; {seconds:.1f}s")
    for line in checkpoint_eval.write_reports(run, record, result, distmat, seed):
        click.echo(line)
