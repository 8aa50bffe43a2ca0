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
@click.option(
    "--knn",
    type=int,
    default=None,
    help="Re-rank from k-nearest-neighbour lists of this length (faiss; for galleries too large for dense rows): "
    "each query's K nearest are re-scored. Needs K >= k1 + 1.",
)
@click.option(
    "--knn-index",
    type=click.Choice(["flat", "cells", "ivf", "hnsw", "ivfpq"]),
    default="flat",
    show_default=True,
    help="With --knn: how the lists are made (flat: exact; cells: k-means cells, fastest for millions; "
    "ivf, hnsw, ivfpq: faiss indexes).",
)
@click.option("--nprobe", type=int, default=None, help="With --knn and cells/ivf/ivfpq: cells searched (default 16).")
@click.option("--topk", default=10, show_default=True, help="How many gallery entries to list per query.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (topk.json, metrics.json).")
def rerank(query_file, gallery_file, knn, knn_index, nprobe, topk, out, **opts) -> None:
    """Re-rank query x gallery distances (Zhong et al. 2017); evaluate when pids are known."""
    from reid.inference.from_files import rerank_feature_files
    from reid.io.features import read_features
    from reid.test_time import DEFAULTS, merge_cli

    settings = merge_cli(DEFAULTS, opts)
    q, g = read_features(query_file), read_features(gallery_file)
    if q.features.shape[1] != g.features.shape[1]:
        raise fail(f"{query_file} has {q.features.shape[1]}-d features but {gallery_file} has {g.features.shape[1]}-d")
    if knn is not None:
        if not settings.rerank:
            raise fail("--knn re-ranks from neighbour lists: drop --no-rerank")
        if knn < settings.k1 + 1:
            raise fail(f"--knn {knn} must be at least k1 + 1 = {settings.k1 + 1}")
        if settings.metric != "cosine":
            raise fail("--knn needs unit-length features (cosine): drop --beta")
        from reid.search.knn_files import rerank_knn_feature_files

        done = rerank_knn_feature_files(q, g, settings, knn, knn_index, nprobe, topk, out)
    else:
        done = rerank_feature_files(q, g, settings, topk, out)
    if done.no_metrics is not None:
        click.echo(f"warning: no metrics ({done.no_metrics})", err=True)
    elif done.rows is not None:
        click.echo(format_metrics_table(done.rows))
    click.echo(f"top-{done.k} lists written to {done.topk_path}")
