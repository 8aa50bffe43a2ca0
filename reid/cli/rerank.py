"""`reid rerank`: k-reciprocal re-ranking from feature files, no model needed."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from reid.io.atomic import write_text
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
    from reid.evaluation import evaluate_rank
    from reid.evaluation.distance import cosine_distance
    from reid.inference.pipeline import retrieval_distance
    from reid.io.features import read_features
    from reid.test_time import DEFAULTS, merge_cli

    settings = merge_cli(DEFAULTS, opts)
    q, g = read_features(query_file), read_features(gallery_file)
    if q.features.shape[1] != g.features.shape[1]:
        raise fail(f"{query_file} has {q.features.shape[1]}-d features but {gallery_file} has {g.features.shape[1]}-d")
    original = cosine_distance(q.features, g.features, normalized=True)
    reranked = retrieval_distance(q.features, g.features, settings)
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
            for name, dist in (("original", original), (settings.describe_post(), reranked)):
                rows[name] = evaluate_rank(dist, q.pids, g.pids, q.camids, g.camids).as_dict()
        except ValueError as exc:  # e.g. no query id in the gallery: the lists stand, the scores do not
            click.echo(f"warning: no metrics ({exc})", err=True)
            click.echo(f"top-{k} lists written to {folder / 'topk.json'}")
            return
        click.echo(format_metrics_table(rows))
        write_text(folder / "metrics.json", json.dumps(rows, indent=2))
    click.echo(f"top-{k} lists written to {folder / 'topk.json'}")
