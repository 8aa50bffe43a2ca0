"""Re-ranking from k-NN lists (reid.search.rerank_knn) against the exact re-ranking, and at a million images.

--msmt: MSMT17 size (11,659 x 82,161, identities and cameras as tools/bench_eval.py), 2048-d by
default. Rows: the original distances (evaluate_features), the exact re-ranking (reid.inference.
k_reciprocal, dense output), and the k-NN-list re-ranking for each --ks (exact lists computed once
with the largest k, then truncated; the other gallery images rank after the list in their original
order, reid.search.dense_with_rest). mAP / rank-1 of each, wall and CPU seconds (the k-NN rows: the
lists' time plus that k's re-ranking, with the stages encode / lqe / jaccard), and the process's RSS
peak (each method in its own process). The exact lists cost what the dense scan costs (the same
symmetric Gram product): on the loaded machine of 2026-12-02, 269 CPU s against 262 for the whole
exact re-ranking; the re-ranking from the lists took 7 CPU s.

--million: N generated clustered 512-d unit vectors (~20 per identity) plus Q queries; lists from
faiss k-means cells of the joint set (default "cells", nprobe 16; or a faiss index: ivf, hnsw,
ivfpq), then the re-ranking of every query's list. Wall and CPU seconds of each stage (build,
search, rowmax; encode, lqe, jaccard), RSS peak, the lists' recall@21 and recall@k against exact
search on --sample points, and the largest row-maximum error there.

    python tools/bench_rerank_knn.py --msmt --ks 100,200 --json knn_msmt.json   # 29 min loaded, ~6 idle
    python tools/bench_rerank_knn.py --million --json knn_1m.json   # 20 min loaded (805 CPU s), 10.5 GB
    python tools/bench_rerank_knn.py --million --n 200000 --queries 2000        # 11 min loaded (159 CPU s)

Figures: docs/scale.md, "Re-ranking from k-nearest-neighbour lists".
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _msmt_data(dim: int, scale: float):
    from bench_eval import MSMT, synthetic

    size = {k: max(1, round(v * scale)) if k != "num_cams" else v for k, v in MSMT.items()}
    return synthetic(**size, dim=dim)


def _metrics(dist, qp, gp, qc, gc) -> dict:
    from reid.evaluation import evaluate_rank

    r = evaluate_rank(dist, qp, gp, qc, gc)
    return {"mAP": r.mAP, "rank1": float(r.cmc[0])}


def child_msmt(case: str, dim: int, scale: float, ks: list[int]) -> list[dict]:
    """One method on the MSMT17-size data, in this process."""
    from reid.evaluation import evaluate_features

    qf, gf, qp, gp, qc, gc = _msmt_data(dim, scale)
    base = rss_mb()
    rows = []
    if case == "original":
        t, c = time.perf_counter(), time.process_time()
        r = evaluate_features(qf, gf, qp, gp, qc, gc)
        rows.append({"method": "original (no re-ranking)", "seconds": time.perf_counter() - t,
                     "cpu_s": time.process_time() - c, "mAP": r.mAP, "rank1": float(r.cmc[0])})  # fmt: skip
    elif case == "exact":
        from reid.inference import k_reciprocal

        t, c = time.perf_counter(), time.process_time()
        dist = k_reciprocal(qf, gf, device="cpu")
        seconds, cpu = time.perf_counter() - t, time.process_time() - c
        rows.append({"method": "exact re-ranking (dense output)", "seconds": seconds, "cpu_s": cpu,
                     **_metrics(dist, qp, gp, qc, gc)})  # fmt: skip
    else:
        from reid.evaluation import pairwise_distances
        from reid.search.rerank_knn import KnnLists, dense_with_rest, k_reciprocal_from_lists, knn_lists

        x = np.concatenate([qf, gf])
        t, c = time.perf_counter(), time.process_time()
        lists = knn_lists(x, len(qf), max(ks), "flat")
        list_s, list_cpu = time.perf_counter() - t, time.process_time() - c
        for k in ks:
            short = KnnLists(lists.dist[:, :k], lists.idx[:, :k], lists.rowmax, len(qf))
            steps: dict[str, float] = {}
            t, c = time.perf_counter(), time.process_time()
            idx, d = k_reciprocal_from_lists(short, x, timings=steps)
            seconds, cpu = time.perf_counter() - t, time.process_time() - c
            full = dense_with_rest(idx, d, pairwise_distances(qf, gf, "cosine"))
            rows.append({"method": f"k-NN lists k={k} (exact lists {list_s:.1f} s + re-ranking)",
                         "seconds": list_s + seconds, "cpu_s": list_cpu + cpu, **_metrics(full, qp, gp, qc, gc),
                         "lists_s": list_s, **{f"{name}_s": v for name, v in steps.items()}})  # fmt: skip
            del full
    for row in rows:
        row.update(rss_before_mb=base, rss_peak_mb=rss_mb())
    return rows


def child_million(n: int, queries: int, dim: int, k: int, kind: str, nprobe: int, sample: int) -> list[dict]:
    import torch
    from bench_rerank import features

    from reid.search.rerank_knn import k_reciprocal_from_lists, knn_lists

    x = features(n + queries, max(1, n // 20), dim, 0.8, 0)
    base = rss_mb()
    print(f"features {x.shape}: RSS {base:.0f} MB", file=sys.stderr, flush=True)
    steps: dict[str, float] = {}
    t, c = time.perf_counter(), time.process_time()
    lists = knn_lists(x, queries, k, kind, nprobe=nprobe, timings=steps)
    list_s, list_cpu = time.perf_counter() - t, time.process_time() - c
    print(f"lists {list_s:.1f} s {steps}: RSS {rss_mb():.0f} MB", file=sys.stderr, flush=True)
    t, c = time.perf_counter(), time.process_time()
    idx, _ = k_reciprocal_from_lists(lists, x, timings=steps)
    rerank_s, rerank_cpu = time.perf_counter() - t, time.process_time() - c
    peak = rss_mb()
    print(f"re-ranking {rerank_s:.1f} s {steps}: RSS {peak:.0f} MB", file=sys.stderr, flush=True)
    pick = np.random.default_rng(0).choice(len(x), min(sample, len(x)), replace=False)
    xt = torch.from_numpy(x)
    exact = (xt[pick] @ xt.T).topk(k, dim=1).indices.numpy()
    recall = float(np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(lists.idx[pick], exact)]))
    k21 = min(21, k)  # the k1 + 1 nearest the k-reciprocal sets are built from
    recall21 = float(np.mean([len(np.intersect1d(a[:k21], b[:k21])) / k21 for a, b in zip(lists.idx[pick], exact)]))
    far = (xt[pick] @ xt.T).amin(1).numpy()
    rowmax_err = float(np.abs(lists.rowmax[pick] - (2 - 2 * far)).max())
    return [{"method": f"{n:,} + {queries:,} queries, {dim}-d, {kind} lists k={k} nprobe {nprobe}",
             "lists_s": list_s, "rerank_s": rerank_s, "seconds": list_s + rerank_s,
             "cpu_s": list_cpu + rerank_cpu, "rss_before_mb": base,
             "rss_peak_mb": peak, "list_recall@21": recall21, f"list_recall@{k}": recall, "rowmax_max_err": rowmax_err,
             "candidates": int(idx.shape[1]), **{f"{name}_s": v for name, v in steps.items()}}]  # fmt: skip


def run_child(argv: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        subprocess.run([sys.executable, __file__, "--child-out", str(out), *argv], check=True)
        return json.loads(out.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--msmt", action="store_true")
    p.add_argument("--million", action="store_true")
    p.add_argument("--dim", type=int, default=None, help="feature dimension (msmt: 2048, million: 512)")
    p.add_argument("--scale", type=float, default=1.0, help="msmt: scale queries, gallery and identities")
    p.add_argument("--ks", default="100,200", help="msmt: list lengths")
    p.add_argument("--n", type=int, default=1_000_000, help="million: gallery size")
    p.add_argument("--queries", type=int, default=10_000, help="million: queries")
    p.add_argument("--k", type=int, default=100, help="million: list length")
    p.add_argument("--kind", default="cells", help="million: how the lists are made (cells, ivf, hnsw, ivfpq)")
    p.add_argument("--nprobe", type=int, default=16)
    p.add_argument("--sample", type=int, default=200, help="million: points whose lists are checked exactly")
    p.add_argument("--json", type=Path)
    p.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    args = p.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    if args.child_out:  # one measurement in this process
        if args.case == "million":
            rows = child_million(args.n, args.queries, args.dim or 512, args.k, args.kind, args.nprobe, args.sample)
        else:
            rows = child_msmt(args.case, args.dim or 2048, args.scale, ks)
        args.child_out.write_text(json.dumps(rows))
        return
    from reid.evaluation.report import format_table

    rows = []
    if args.msmt:
        common = ["--dim", str(args.dim or 2048), "--scale", str(args.scale), "--ks", args.ks]
        for case in ("original", "exact", "knn"):
            rows += run_child(["--case", case, *common])
            print(format_table(rows[-len(ks) :], list(rows[-1]), floatfmt=".4g"), flush=True)
        exact = next(r for r in rows if r["method"].startswith("exact"))
        for r in rows:
            r["mAP_diff_vs_exact"] = r["mAP"] - exact["mAP"]
    if args.million:
        million = ["--case", "million", "--n", str(args.n), "--queries", str(args.queries), "--k", str(args.k)]
        million += ["--kind", args.kind, "--nprobe", str(args.nprobe), "--sample", str(args.sample)]
        million += ["--dim", str(args.dim or 512)]
        rows += run_child(million)
    columns = list(dict.fromkeys(key for r in rows for key in r))
    print(format_table(rows, columns, floatfmt=".4g"))
    if args.json:
        from reid.io.atomic import write_text

        write_text(
            args.json, json.dumps({"config": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
