"""Time and peak memory of k-reciprocal re-ranking: ours vs the dense published-port algorithm.

Every measurement runs in a fresh subprocess, so peaks never mix: the peak is
that process's RSS high-water mark (resource.getrusage ru_maxrss), taken once
after building the features ("before") and once after the run ("peak").
Features are random clustered vectors (default 751 identities, 2048-d, unit
norm with noise), query share as in Market-1501. Distances are computed
inside the timed region for both methods. Where both ran, the largest
absolute difference between their outputs is reported. On the CPU, ours runs as
`k_reciprocal_in_place` on the generated (N, D) array (no second copy of the
features: what a caller that holds one joint array gets).

    python tools/bench_rerank.py                       # 2k, half Market, Market with and without junk
    python tools/bench_rerank.py --msmt --json out.json  # adds MSMT17 93,820 (ours only)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MARKET = (19281, 3368)
MSMT = (93820, 11659)
MARKET_NO_JUNK = (16735, 3368)  # Market-1501 without its junk images
HALF = (8368, 1684)  # half of that


def features(n: int, ids: int, dim: int, noise: float, seed: int) -> np.ndarray:
    """(n, dim) float32 unit vectors: a random identity centre plus Gaussian noise of norm ~noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ids, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, ids, n)
    x = np.empty((n, dim), np.float32)
    for a in range(0, n, 8192):
        b = min(a + 8192, n)
        x[a:b] = centres[labels[a:b]] + rng.standard_normal((b - a, dim), dtype=np.float32) * np.float32(
            noise / np.sqrt(dim)
        )
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _dense_reference():
    spec = importlib.util.spec_from_file_location("rerank_reference", ROOT / "tests" / "test_rerank.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dense_rerank_reference


def _euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(sq, 0.0, out=sq), out=sq)


def worker(args: argparse.Namespace) -> None:
    """One measurement in this process; prints a JSON line."""
    import torch

    sys.path.insert(0, str(ROOT))
    from reid.inference import k_reciprocal, k_reciprocal_in_place

    x = features(args.n, args.ids, args.dim, args.noise, args.seed)
    q, g = x[: args.nq], x[args.nq :]
    reference = _dense_reference() if args.worker == "dense" else None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if args.worker == "ours" and args.device in (None, "cpu"):  # the joint array is the working copy
        out = k_reciprocal_in_place(
            torch.from_numpy(x), args.nq, args.k1, args.k2, args.lam, chunk_size=args.chunk_size
        )
    elif args.worker == "ours":
        out = k_reciprocal(q, g, args.k1, args.k2, args.lam, device=args.device, chunk_size=args.chunk_size)
    else:
        out = reference(_euclidean(q, g), _euclidean(q, q), _euclidean(g, g), args.k1, args.k2, args.lam)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.save:
        np.save(args.save, out.astype(np.float32))
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "before_mb": before, "threads": torch.get_num_threads()}))


def gemm_gflops(dim: int = 2048) -> float:
    """Measured float32 GEMM rate right now on the kernel the scan uses: how busy the machine is."""
    import torch

    sys.path.insert(0, str(ROOT))
    from reid.gemm import matmul_nt

    a = torch.randn(dim, dim)
    matmul_nt(a, a)
    start = time.perf_counter()
    matmul_nt(a, a)
    return 2 * dim**3 / (time.perf_counter() - start) / 1e9


def measure(method: str, n: int, nq: int, args: argparse.Namespace, save: str | None, pass_threads: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, "--n", str(n), "--nq", str(nq)]
    for opt in ("ids", "dim", "noise", "seed", "k1", "k2", "lam", "device", "chunk_size"):
        cmd += [f"--{opt.replace('_', '-')}", str(getattr(args, opt))]
    if save:
        cmd += ["--save", save]
    env = dict(os.environ, REID_RERANK_PASS_THREADS=str(pass_threads)) if pass_threads else None
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--sizes",
        default=f"2000,{HALF[0]}:{HALF[1]},{MARKET[0]},{MARKET_NO_JUNK[0]}:{MARKET_NO_JUNK[1]}",
        help="total image counts N or N:Q (comma list)",
    )
    p.add_argument("--msmt", action="store_true", help=f"add the MSMT17 size {MSMT[0]} ({MSMT[1]} queries)")
    p.add_argument("--dense-max", type=int, default=10000, help="run the dense baseline only up to this N")
    p.add_argument("--ids", type=int, default=751)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--noise", type=float, default=0.8, help="noise norm relative to the unit centre")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k1", type=int, default=20)
    p.add_argument("--k2", type=int, default=6)
    p.add_argument("--lam", type=float, default=0.3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--chunk-size", type=int, default=2048)
    p.add_argument(
        "--pass-threads",
        type=int,
        default=0,
        help="also run ours with REID_RERANK_PASS_THREADS=this (e.g. 1, the busy-machine setting) "
        "on the sizes the dense port runs",
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--worker", choices=["ours", "dense"], help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--nq", type=int, help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    sizes = []
    for spec in (v.strip() for v in args.sizes.split(",") if v.strip()):
        n, _, nq = spec.partition(":")  # "N" (query share of Market) or "N:Q"
        sizes.append(
            (int(n), int(nq) if nq else MARKET[1] if int(n) == MARKET[0] else round(int(n) * MARKET[1] / MARKET[0]))
        )
    if args.msmt:
        sizes.append(MSMT)
    sys.path.insert(0, str(ROOT))
    from reid.gemm import gemm_kernel

    print(f"GEMM rate now: {gemm_gflops():.0f} GFLOP/s float32 on {gemm_kernel()} (machine load indicator)")
    head = f"{'N':>7} {'Q':>6} | {'ours s':>7} {'peak MB':>8} {'+MB':>6} | {'dense s':>7} {'peak MB':>8} {'+MB':>6}"
    print(head + f" | {'speed x':>7} {'mem x':>6} {'max |diff|':>10} | {'GEMM GF/s':>9}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, nq in sizes:
            both = n <= args.dense_max
            ours = measure("ours", n, nq, args, f"{tmp}/ours.npy" if both else None)
            dense = measure("dense", n, nq, args, f"{tmp}/dense.npy") if both else None
            row = {"n": n, "num_query": nq, "ours": ours, "dense": dense, "gemm_gflops_after": gemm_gflops()}
            if both and "error" not in ours and "error" not in dense:
                row["max_abs_diff"] = float(np.abs(np.load(f"{tmp}/ours.npy") - np.load(f"{tmp}/dense.npy")).max())
                row["speedup"] = dense["seconds"] / ours["seconds"]
                row["memory_ratio"] = dense["peak_mb"] / ours["peak_mb"]
            if both and args.pass_threads:
                alt = measure("ours", n, nq, args, None, args.pass_threads)
                row[f"ours_pass_threads_{args.pass_threads}"] = alt
                if "error" not in alt and dense and "error" not in dense:
                    row[f"speedup_pass_threads_{args.pass_threads}"] = dense["seconds"] / alt["seconds"]
            rows.append(row)
            print(_line(row), flush=True)
            for key in (k for k in row if k.startswith("ours_pass_threads_")):
                alt = row[key]
                print(f"    {key}: " + (alt.get("error") or f"{alt['seconds']:.2f} s, peak {alt['peak_mb']:.0f} MB"))
    if args.json:
        sys.path.insert(0, str(ROOT))
        from reid.io.atomic import write_text

        config = {k: v for k, v in vars(args).items() if k != "json"}
        write_text(args.json, json.dumps({"config": config, "rows": rows}, indent=2, default=str))


def _line(row: dict) -> str:
    def cells(m: dict | None) -> str:
        if m is None:
            return f"{'-':>7} {'-':>8} {'-':>6}"
        if "error" in m:
            return f"{'error':>7} {m['error'][:16]:>16}"
        return f"{m['seconds']:7.1f} {m['peak_mb']:8.0f} {m['peak_mb'] - m['before_mb']:6.0f}"

    tail = f"{row['speedup']:7.1f} {row['memory_ratio']:6.1f} {row['max_abs_diff']:10.1e}" if "speedup" in row else ""
    tail = f"{tail:>26} | {row['gemm_gflops_after']:9.0f}"
    return f"{row['n']:>7} {row['num_query']:>6} | {cells(row['ours'])} | {cells(row['dense'])} | {tail}"


if __name__ == "__main__":
    main()
