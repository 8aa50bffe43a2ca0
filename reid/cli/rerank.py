"""`reid rerank`: k-reciprocal re-ranking from feature files, no model needed."""

from __future__ import annotations

import click

from reid.test_time import POST_FIELDS, click_options

from .common import fail, format_metrics_table


@click.command()
@click.option(
    "--query",
    "query_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="Query features (.h5 from reid extract).",
)
@click.option(
    "--gallery", "gallery_file", required=True, type=click.Path(dir_okay=False), help="Gallery features (.h5)."
)
@click_options(POST_FIELDS, defaults={"rerank": True})  # QE and re-ranking options of the schema
@click.option("--topk", default=10, show_default=True, help="How many gallery entries to list per query.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (topk.json, metrics.json).")
def rerank(query_file, gallery_file, topk, out, **opts) -> None:
    """Re-rank query x gallery distances (Zhong et al. 2017); evaluate when pids are known."""
    from reid.inference.from_files import rerank_feature_files
    from reid.io.features import read_features
    from reid.test_time import DEFAULTS, merge_cli

    settings = merge_cli(DEFAULTS, opts)
    q, g = read_features(query_file), read_features(gallery_file)
    if q.features.shape[1] != g.features.shape[1]:
        raise fail(f"{query_file} has {q.features.shape[1]}-d features but {gallery_file} has {g.features.shape[1]}-d")
    done = rerank_feature_files(q, g, settings, topk, out)
    if done.no_metrics is not None:
        click.echo(f"warning: no metrics ({done.no_metrics})", err=True)
    elif done.rows is not None:
        click.echo(format_metrics_table(done.rows))
    click.echo(f"top-{done.k} lists written to {done.topk_path}")
