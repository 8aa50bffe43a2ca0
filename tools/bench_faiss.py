"""faiss gallery indexes: build time, search speed, size and recall@k of each kind against exact search.

Gallery and queries are generated clustered unit vectors (identities plus noise,
like bench_rerank). Exact search (flat) is the baseline of the same run: recall@k
is the share of its k nearest that an approximate kind also returns. Memory is the
serialised index size and the process RSS high-water mark after each build.

    python tools/bench_faiss.py                          # 200k x 512-d gallery, 1,000 queries
    python tools/bench_faiss.py --n 1000000 --json out.json   # 1M (about 2 GB of features + the indexes)
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rerank import features  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200_000, help="gallery size")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--ids", type=int, default=0, help="identities (default n / 20: ~20 images each)")
    p.add_argument("--threads", type=int, default=0, help="faiss OpenMP threads (default: faiss's choice)")
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--kinds", default="flat,ivf,hnsw,ivfpq")
    p.add_argument("--nprobe", type=int, default=16)
    p.add_argument("--train-size", type=int, default=0, help="vectors training ivf / ivfpq (0: the default, 64 a list)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    import faiss

    from reid.search import GalleryIndex

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    x = features(args.n + args.queries, args.ids or max(1, args.n // 20), args.dim, 0.8, 0)
    q, g = x[: args.queries], x[args.queries :]
    print(
        f"gallery {args.n} x {args.dim}, {args.queries} queries, k={args.k}, faiss {faiss.__version__}, "
        f"{faiss.omp_get_max_threads()} threads; features {g.nbytes / 2**20:.0f} MB; RSS {rss_mb():.0f} MB"
    )
    rows, exact = [], None
    head = f"{'kind':>6} | {'build s':>8} {'index MB':>9} {'RSS MB':>7} | {'search s':>8} {'q/s':>8} | "
    print(head + f"{'recall@1':>8} {'recall@10':>9} {'recall@k':>8}")
    for kind in args.kinds.split(","):
        start = time.perf_counter()
        gi = GalleryIndex.build(g, kind, normalize=False, train_size=args.train_size or None)
        build = time.perf_counter() - start
        size = len(faiss.serialize_index(gi.index)) / 2**20
        start = time.perf_counter()
        _, idx = gi.search(q, args.k, nprobe=args.nprobe)
        seconds = time.perf_counter() - start
        if kind == "flat":
            exact = idx
        row = {"kind": kind, "build_s": build, "index_mb": size, "rss_mb": rss_mb(), "search_s": seconds,
               "queries_per_s": args.queries / seconds}  # fmt: skip
        if exact is not None:
            for r in (1, 10, args.k):
                hit = [len(np.intersect1d(a[:r], b[:r])) / r for a, b in zip(idx, exact)]
                row[f"recall@{r}"] = float(np.mean(hit))
        rows.append(row)
        rec = " ".join(f"{row.get(f'recall@{r}', float('nan')):8.3f}" for r in (1, 10, args.k))
        speed = f"{seconds:8.2f} {row['queries_per_s']:8.0f}"
        print(f"{kind:>6} | {build:8.1f} {size:9.0f} {row['rss_mb']:7.0f} | {speed} | {rec}", flush=True)
        del gi
    if args.json:
        from reid.io.atomic import write_text

        config = {k: str(v) for k, v in vars(args).items()}
        write_text(args.json, json.dumps({"config": config, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
