"""`reid rerank`: k-reciprocal re-ranking from feature files, no model needed."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from reid.io.atomic import write_text
from reid.test_time import POST_FIELDS, click_options

from .common import fail, format_metrics_table

# largest query x gallery matrix the --knn path builds to score itself (1 GiB): its candidates, then the rest
_DENSE_METRICS = 2**28


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
    from reid.evaluation import evaluate_rank
    from reid.evaluation.distance import cosine_distance
    from reid.inference.pipeline import retrieval_distance
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
        order, order_dist = _knn_rerank(q.features, g.features, settings, knn, knn_index, nprobe)
        reranked = None
        if len(q) * len(g) <= _DENSE_METRICS:
            from reid.search.rerank_knn import dense_with_rest

            reranked = dense_with_rest(order, order_dist, cosine_distance(q.features, g.features, normalized=True))
    else:
        reranked = retrieval_distance(q.features, g.features, settings)
        order = np.argsort(reranked, axis=1, kind="stable")[:, :topk]
        order_dist = np.take_along_axis(reranked, order, 1)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    k = min(topk, order.shape[1])
    lists = [
        {
            "query": q.paths[i],
            "gallery": [g.paths[j] for j in row[:k] if j >= 0],
            "distance": [float(x) for j, x in zip(row[:k], dist[:k]) if j >= 0],
        }
        for i, (row, dist) in enumerate(zip(order, order_dist))
    ]
    write_text(folder / "topk.json", json.dumps(lists, indent=1))
    if reranked is None:
        click.echo(f"no metrics: {len(q):,} x {len(g):,} is too large for a dense matrix (use the Python API)")
    elif (q.pids >= 0).any() and (g.pids >= 0).any():
        original = cosine_distance(q.features, g.features, normalized=True)
        rows = {}
        try:
            name_rr = settings.describe_post() + (f"+knn({knn},{knn_index})" if knn else "")
            for name, dist in (("original", original), (name_rr, reranked)):
                rows[name] = evaluate_rank(dist, q.pids, g.pids, q.camids, g.camids).as_dict()
        except ValueError as exc:  # e.g. no query id in the gallery: the lists stand, the scores do not
            click.echo(f"warning: no metrics ({exc})", err=True)
            click.echo(f"top-{k} lists written to {folder / 'topk.json'}")
            return
        click.echo(format_metrics_table(rows))
        write_text(folder / "metrics.json", json.dumps(rows, indent=2))
    click.echo(f"top-{k} lists written to {folder / 'topk.json'}")


def _knn_rerank(qf, gf, settings, knn: int, kind: str, nprobe: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(Q, c) re-ranked gallery indices (-1 padding) and their distances, best first."""
    from reid.inference.pipeline import expand_queries
    from reid.search.rerank_knn import rerank_knn

    qf, gf = expand_queries(qf, gf, settings)
    return rerank_knn(qf, gf, knn, settings.k1, settings.k2, settings.lambda_value, kind=kind, nprobe=nprobe)
