"""How far k-reciprocal re-ranking is from the dense reference, and whether it matters for the metrics.

Runs ours, the dense published-port algorithm in float32 (what bench_rerank
compares with) and the same algorithm with every step in float64 (no float32
rounding anywhere), on bench_rerank's clustered features with
their identity labels and random cameras. Prints the entries off by more than
1e-4 between each pair and the mAP / rank-1 of each under the Market protocol.
Differences between the two dense runs show what float32 near-ties at the k-th
neighbour alone do.

    python tools/check_rerank_exact.py --n 8368 --nq 1684
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from bench_rerank import _dense_reference, _euclidean, features  # noqa: E402


def labels(n: int, ids: int, seed: int) -> np.ndarray:
    """The identity of each row of bench_rerank.features(n, ids, ..., seed) (same random stream)."""
    rng = np.random.default_rng(seed)
    rng.standard_normal((ids, 2048), dtype=np.float32)
    return rng.integers(0, ids, n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=8368)
    p.add_argument("--nq", type=int, default=1684)
    args = p.parse_args()
    from reid.evaluation import evaluate_rank
    from reid.inference import k_reciprocal

    x = features(args.n, 751, 2048, 0.8, 0)
    pid = labels(args.n, 751, 0)
    cam = np.random.default_rng(1).integers(0, 6, args.n)
    q, g = x[: args.nq], x[args.nq :]
    dense = _dense_reference()
    out = {"ours": k_reciprocal(q, g, device="cpu")}
    out["dense float32"] = dense(_euclidean(q, g), _euclidean(q, q), _euclidean(g, g))
    q64, g64 = q.astype(np.float64), g.astype(np.float64)
    out["dense float64"] = dense(_euclidean(q64, g64), _euclidean(q64, q64), _euclidean(g64, g64), dtype=np.float64)
    names = list(out)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            d = np.abs(out[a].astype(np.float64) - out[b])
            rows = np.unique(np.nonzero(d > 1e-4)[0]).size
            print(f"{a} vs {b}: max |diff| {d.max():.1e}, {(d > 1e-4).sum()} entries > 1e-4 in {rows} query rows")
    for name, dist in out.items():
        r = evaluate_rank(dist, pid[: args.nq], pid[args.nq :], cam[: args.nq], cam[args.nq :])
        print(f"{name:>14}: mAP {100 * r.mAP:.4f}%  rank-1 {100 * r.cmc[0]:.4f}%")


if __name__ == "__main__":
    main()
