"""`reid index build` and `reid search`: faiss indexes over gallery feature files."""

from __future__ import annotations

from pathlib import Path

import click

from .common import fail


@click.group("index")
def index() -> None:
    """Build faiss indexes over gallery features (for galleries too large for a full distance matrix)."""


@index.command("build")
@click.option("--features", "features_file", required=True, type=click.Path(dir_okay=False), help="Gallery .h5.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Index file to write (e.g. gallery.faiss).")
@click.option(
    "--kind",
    type=click.Choice(["flat", "ivf", "hnsw", "ivfpq"]),
    default="flat",
    show_default=True,
    help="flat: exact; ivf, hnsw, ivfpq: approximate (faster, ivfpq also smaller).",
)
@click.option("--nlist", type=int, default=None, help="Inverted lists for ivf/ivfpq (default ~4 sqrt(N)).")
def build(features_file: str, out: str, kind: str, nlist: int | None) -> None:
    """Index a gallery feature file; the index records the file's fingerprint and model."""
    from reid.search import build_from_feature_file

    if nlist is not None and nlist < 1:
        raise fail(f"--nlist must be >= 1, got {nlist}")
    gallery = build_from_feature_file(features_file, kind, nlist=nlist)
    gallery.save(out)
    click.echo(f"wrote {out}: {kind} index of {len(gallery)} x {gallery.dim} features from {features_file}")


@click.command()
@click.option("--index", "index_file", required=True, type=click.Path(dir_okay=False), help="From reid index build.")
@click.option("--query", "query_file", required=True, type=click.Path(dir_okay=False), help="Query features (.h5).")
@click.option("--k", "k", default=100, show_default=True, help="Neighbours per query.")
@click.option("--nprobe", type=int, default=None, help="ivf/ivfpq: cells searched (default 16).")
@click.option("--ef-search", type=int, default=None, help="hnsw: search breadth (default max(128, 2k)).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Top-k result file (.h5).")
def search(index_file: str, query_file: str, k: int, nprobe: int | None, ef_search: int | None, out: str) -> None:
    """The k nearest gallery images of every query: indices, squared distances, their pids and camids."""
    from reid.io.features import read_features
    from reid.search import GalleryIndex
    from reid.search.results import write_search_results

    if k < 1:
        raise fail(f"--k must be >= 1, got {k}")
    gallery = GalleryIndex.load(index_file)
    queries = read_features(query_file)
    dist, idx = gallery.search(queries.features, k, query_attrs=queries.attrs, nprobe=nprobe, ef_search=ef_search)
    write_search_results(out, gallery, queries, dist, idx, index_file, query_file)
    click.echo(f"wrote {out}: top-{idx.shape[1]} of {len(queries)} queries in {Path(index_file).name}")
