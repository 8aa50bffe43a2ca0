"""Seconds and share of each stage of k-reciprocal re-ranking (features -> re-ranked distances).

Stages: scan (blocked Gram products: k nearest, row maxima, query x gallery
block), encode (expanded k-reciprocal sets and weights), lqe (local query
expansion), jaccard (query x gallery Jaccard join and the final mix). A bare
GEMM pass over the same upper block triangle is timed in the same run as the
floor of the scan. Works on this checkout or, with --root, on another one (to
profile an older version the same way).

    python tools/profile_rerank.py --n 16735 --nq 3368            # Market without junk
    python tools/profile_rerank.py --root /tmp/base --n 16735 --nq 3368
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rerank import features  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=16735)
    p.add_argument("--nq", type=int, default=3368)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to profile")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    sys.path.insert(0, str(args.root))
    import torch

    rr = importlib.import_module("reid.inference.rerank")
    try:
        source_cls = importlib.import_module("reid.inference.rerank_sources").FeatureSource
    except ImportError:  # older layout: the sources lived in rerank.py
        source_cls = rr._FeatureSource
    seconds: dict[str, float] = {}

    def timed(name, fn):
        def wrapper(*a, **k):
            start = time.perf_counter()
            result = fn(*a, **k)
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
            return result

        return wrapper

    source_cls.scan = timed("scan", source_cls.scan)
    rr._encode = timed("encode", rr._encode)
    rr._local_query_expansion = timed("lqe", rr._local_query_expansion)
    rr._jaccard_combine = timed("jaccard", rr._jaccard_combine)
    x = features(args.n, 751, args.dim, 0.8, 0)
    start = time.perf_counter()
    rr.k_reciprocal(x[: args.nq], x[args.nq :], device="cpu")
    total = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:  # the scan's own kernel choice; an older checkout has none and uses torch's
        from reid.gemm import gemm_kernel, matmul_nt
    except ImportError:
        gemm_kernel, matmul_nt = (lambda: "blas"), (lambda a, b: a @ b.T)
    t = torch.from_numpy(x)
    start = time.perf_counter()
    for a in range(0, args.n, 2048):
        for c in range(a, args.n, 2048):
            matmul_nt(t[a : a + 2048], t[c : c + 2048])
    gemm = time.perf_counter() - start
    seconds["other"] = total - sum(seconds.values())
    print(f"root {args.root}  N={args.n} Q={args.nq}  total {total:.2f} s  peak RSS {peak:.0f} MB")
    print(f"{'stage':>8} {'seconds':>8} {'share':>6}")
    for name, s in seconds.items():
        print(f"{name:>8} {s:8.2f} {s / total:6.1%}")
    print(f"{'GEMM':>8} {gemm:8.2f} (bare Gram products of the scan on {gemm_kernel()}, same run: its floor)")
    if args.json:
        from reid.io.atomic import write_text

        write_text(
            args.json,
            json.dumps({"total": total, "stages": seconds, "gemm": gemm, "kernel": gemm_kernel(), "peak_mb": peak}),
        )


if __name__ == "__main__":
    main()
