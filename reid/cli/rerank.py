"""`reid rerank`: k-reciprocal re-ranking from feature files, no model needed."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from reid.io.atomic import write_text

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
@click.option("--k1", default=20, show_default=True)
@click.option("--k2", default=6, show_default=True)
@click.option("--lambda", "lambda_value", default=0.3, show_default=True, help="Weight of the original distance.")
@click.option(
    "--qe",
    type=click.Choice(["none", "alpha", "dba"]),
    default="none",
    show_default=True,
    help="Query expansion before re-ranking: alpha-QE (queries and gallery) or DBA (gallery).",
)
@click.option("--qe-k", default=10, show_default=True, help="Neighbours used by query expansion (itself included).")
@click.option("--qe-alpha", default=3.0, show_default=True, help="Similarity exponent of query expansion.")
@click.option(
    "--rerank/--no-rerank",
    "do_rerank",
    default=True,
    show_default=True,
    help="k-reciprocal re-ranking (--no-rerank: query expansion only).",
)
@click.option("--topk", default=10, show_default=True, help="How many gallery entries to list per query.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (topk.json, metrics.json).")
def rerank(query_file, gallery_file, k1, k2, lambda_value, qe, qe_k, qe_alpha, do_rerank, topk, out) -> None:
    """Re-rank query x gallery distances (Zhong et al. 2017); evaluate when pids are known."""
    from reid.engine.evaluate import PostProcess, retrieval_distance
    from reid.evaluation import evaluate_rank
    from reid.inference.features import cosine_distance
    from reid.io.features import read_features

    q, g = read_features(query_file), read_features(gallery_file)
    if q.features.shape[1] != g.features.shape[1]:
        raise fail(f"{query_file} has {q.features.shape[1]}-d features but {gallery_file} has {g.features.shape[1]}-d")
    if k1 < 1 or k2 < 1 or not 0.0 <= lambda_value <= 1.0:
        raise fail("--k1 and --k2 must be >= 1 and --lambda in [0, 1]")
    if qe_k < 1 or qe_alpha < 0:
        raise fail("--qe-k must be >= 1 and --qe-alpha >= 0")
    post = PostProcess(qe=qe, qe_k=qe_k, qe_alpha=qe_alpha, rerank=do_rerank, k1=k1, k2=k2, lambda_value=lambda_value)
    original = cosine_distance(q.features, g.features)
    reranked = retrieval_distance(q.features, g.features, "cosine", post)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    k = min(topk, len(g))
    order = np.argsort(reranked, axis=1, kind="stable")[:, :k]
    lists = [
        {"query": q.paths[i], "gallery": [g.paths[j] for j in row], "distance": [float(reranked[i, j]) for j in row]}
        for i, row in enumerate(order)
    ]
    write_text(folder / "topk.json", json.dumps(lists, indent=1))
    if (q.pids >= 0).any() and (g.pids >= 0).any():
        rows = {}
        try:
            for name, dist in (("original", original), (post.describe(), reranked)):
                rows[name] = evaluate_rank(dist, q.pids, g.pids, q.camids, g.camids).as_dict()
        except ValueError as exc:  # e.g. no query id in the gallery: the lists stand, the scores do not
            click.echo(f"warning: no metrics ({exc})", err=True)
            click.echo(f"top-{k} lists written to {folder / 'topk.json'}")
            return
        click.echo(format_metrics_table(rows))
        write_text(folder / "metrics.json", json.dumps(rows, indent=2))
    click.echo(f"top-{k} lists written to {folder / 'topk.json'}")
