"""Time and peak memory of reid.evaluation.evaluate_rank / evaluate_features vs a per-query argsort loop.

Synthetic problems with re-ID structure: Market-1501 sized (3,368 queries x 15,913
gallery, 750 ids + pid-0 distractors, 6 cameras) scaled by 0.25, 0.5, 1, and
MSMT17 sized (11,659 x 82,161, 3,060 ids, 15 cameras, from features only).
Features are identity centres plus noise (2048-d, float32), tuned so rank-1 is
roughly that of a trained model; distances are cosine. One extra row ranks
uniform random distances (no structure, the worst case for ours).

Memory is the tracemalloc peak of allocations made during the call (NumPy reports
its buffers to tracemalloc), so the input distance matrix or features are not
counted; it is also given as a multiple of the float32 distance matrix size.
torch's buffers (the distance products) are invisible to tracemalloc, so the
resident-memory peak above the start of the call (rss_MiB) is given beside it.

    PYTHONPATH=. python tools/bench_eval.py [--no-msmt] [--json PATH]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from reid.evaluation import evaluate_features, evaluate_rank, pairwise_distances
from reid.evaluation.distance import DistanceChunks
from reid.evaluation.ranks import average_precision, match_ranks
from reid.evaluation.report import format_table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rss import PeakRss  # noqa: E402

MARKET = {"num_q": 3368, "num_g": 15913, "num_ids": 750, "num_distractors": 2793, "num_cams": 6}
MSMT = {"num_q": 11659, "num_g": 82161, "num_ids": 3060, "num_distractors": 0, "num_cams": 15}


def synthetic(num_q, num_g, num_ids, num_distractors, num_cams, dim=2048, noise=3.0, seed=0):
    """Query/gallery features, pids and camids with identity structure (float32)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_ids + 1, dim), dtype=np.float32)
    q_pids = np.concatenate([np.arange(1, num_ids + 1), rng.integers(1, num_ids + 1, num_q - num_ids)])
    g_pids = np.concatenate(
        [np.zeros(num_distractors, np.int64), np.arange(1, num_ids + 1),
         rng.integers(1, num_ids + 1, num_g - num_ids - num_distractors)]
    )  # fmt: skip
    q_cams, g_cams = rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g)
    qf = centres[q_pids] + noise * rng.standard_normal((num_q, dim), dtype=np.float32)
    gf = np.empty((num_g, dim), np.float32)
    for s in range(0, num_g, 8192):  # bounded temporaries
        e = min(s + 8192, num_g)
        gf[s:e] = rng.standard_normal((e - s, dim), dtype=np.float32)
        gf[s:e] *= noise
        gf[s:e] += centres[g_pids[s:e]] * (g_pids[s:e, None] > 0)
    return qf, gf, q_pids, g_pids, q_cams, g_cams


def baseline(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """The classic open-source loop: a stable argsort of every row, then masks."""
    cmc_sum, aps = np.zeros(max_rank), []
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i])) & (g_pids[order] != -1)
        matches = (g_pids[order] == q_pids[i])[keep]
        if not matches.any():
            continue
        cmc = matches.cumsum()
        cmc_sum += cmc[:max_rank] > 0
        hits = np.flatnonzero(matches)
        aps.append(np.mean(np.arange(1, len(hits) + 1) / (hits + 1)))
    return float(np.mean(aps)), cmc_sum / len(aps)


def matmul_floor(qf, gf):
    """The distance chunks evaluate_features ranks, computed and dropped: the floor of evaluating from features."""
    for _, chunk in DistanceChunks(qf, gf, "cosine").chunks():
        del chunk
    return None


def old_path(qf, gf, q_pids, g_pids, q_camids, g_camids):
    """evaluate_features before the compiled chunk ranking: the same chunks, one Python iteration per query
    (match_ranks: candidates up to the hardest match, then counting or sorting). Returns (mAP,)."""
    aps = []
    for start, chunk in DistanceChunks(qf, gf, "cosine").chunks():
        for b, row in enumerate(chunk):
            i = start + b
            same = g_pids == q_pids[i]
            row[same & (g_camids == q_camids[i])] = np.nan
            row[g_pids == -1] = np.nan
            matches = np.flatnonzero(same & ~np.isnan(row))
            if matches.size:
                aps.append(average_precision(match_ranks(row, matches)))
    return (float(np.mean(aps)),)


def measure(fn, memory: bool):
    """(seconds, (tracemalloc peak bytes, resident-memory growth bytes) or None, result) of one call.

    tracemalloc sees NumPy's buffers but not torch's (the distance products are torch tensors), so
    the resident-memory peak above the start of the call is reported beside it.
    """
    gc.collect()
    if not memory:
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, None, out
    tracemalloc.start()
    with PeakRss() as rss:
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, (peak, (rss.peak - rss.start) * 2**20), out


def run_case(
    name, data, repeat=1, with_distmat=True, with_baseline=True, random_distances=False, memory_run=True, old=False
):
    qf, gf, qp, gp, qc, gc_ = data
    dist_bytes = len(qp) * len(gp) * 4
    rows = []

    def add(method, fn, base_seconds=None, times=repeat):
        """Best time of `times` plain runs, then one run under tracemalloc for the peak."""
        if memory_run:
            seconds, _, out = min((measure(fn, memory=False) for _ in range(times)), key=lambda r: r[0])
            peak = measure(fn, memory=True)[1]
        else:  # too slow to run twice: time and peak from the same run under tracemalloc
            seconds, peak, out = measure(fn, memory=True)
        m_ap = out.mAP if hasattr(out, "mAP") else out[0] if isinstance(out, tuple) else None
        peak, rss = peak
        rows.append({
            "case": name, "queries": len(qp), "gallery": len(gp), "method": method, "seconds": round(seconds, 3),
            "peak_MiB": round(peak / 2**20, 1), "rss_MiB": round(rss / 2**20, 1),
            "peak_x_distmat": round(peak / dist_bytes, 2),
            "mAP": None if m_ap is None else round(m_ap, 6),
            "speedup": round(base_seconds / seconds, 1) if base_seconds else None,
        })  # fmt: skip
        return seconds

    distmat = None
    if with_distmat:
        if random_distances:
            distmat = np.random.default_rng(1).random((len(qp), len(gp)), dtype=np.float32)
        else:
            distmat = pairwise_distances(qf, gf, "cosine")
    base = None
    if with_baseline and distmat is not None:
        base = add("numpy argsort loop (baseline)", lambda: baseline(distmat, qp, gp, qc, gc_), times=1)
    if distmat is not None:
        add("evaluate_rank (distmat)", lambda: evaluate_rank(distmat, qp, gp, qc, gc_), base)
    classic = None  # full distance matrix, then the baseline loop: what evaluate_features replaces
    if not random_distances and with_distmat:
        dist_seconds = add("pairwise_distances only (the matmul)", lambda: pairwise_distances(qf, gf, "cosine"))
        classic = base + dist_seconds if base is not None else None
    if not random_distances:
        add(
            f"evaluate_features ({qf.shape[1]}-d)",
            lambda: evaluate_features(qf, gf, qp, gp, qc, gc_, metric="cosine"),
            classic,
        )
        add("chunked distances only (its matmul floor)", lambda: matmul_floor(qf, gf), times=1)
        if old:
            add("old path: chunks + per-query loop", lambda: old_path(qf, gf, qp, gp, qc, gc_), times=1)
    if base is not None:
        assert abs(rows[0]["mAP"] - rows[1]["mAP"]) < 1e-6, "ours and the baseline disagree"
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the results to this JSON file")
    ap.add_argument("--no-msmt", action="store_true", help="skip the MSMT17-size case (about 2 minutes)")
    ap.add_argument("--msmt-dim", type=int, default=2048, help="feature dimension of the MSMT17 case")
    ap.add_argument("--repeat", type=int, default=3, help="time ours as the best of this many runs")
    ap.add_argument("--scales", default="0.25,0.5,1", help="Market-1501 scales (queries and gallery both scaled)")
    ap.add_argument("--no-old", action="store_true", help="skip the old per-query path at MSMT17 size")
    args = ap.parse_args()
    evaluate_rank(np.random.default_rng(0).random((4, 9)), np.arange(4), np.arange(9) % 4, np.zeros(4), np.ones(9))
    rows = []  # (the call above compiles the ranking kernel, or loads it from numba's cache)
    for scale in [float(s) for s in args.scales.split(",")]:
        size = {k: max(1, round(v * scale)) for k, v in MARKET.items() if k != "num_cams"}
        data = synthetic(**size, num_cams=MARKET["num_cams"])
        rows += run_case(f"Market x{scale:g}", data, args.repeat)
        print(format_table(rows[-5:], list(rows[-1]), floatfmt=".4g"), flush=True)
    rows += run_case(f"Market x{scale:g} random", data, args.repeat, random_distances=True)
    print(format_table(rows[-2:], list(rows[-1]), floatfmt=".4g"), flush=True)
    if not args.no_msmt:
        data = synthetic(**MSMT, dim=args.msmt_dim)
        rows += run_case(
            f"MSMT17 {args.msmt_dim}-d", data, with_distmat=False, with_baseline=False, memory_run=False,
            old=not args.no_old,
        )  # fmt: skip
        feats = (data[0].nbytes + data[1].nbytes) / 2**20
        print(f"MSMT17 features: {feats:.0f} MiB (not counted in the peaks)", flush=True)
        print(format_table(rows[-3:], list(rows[-1]), floatfmt=".4g"), flush=True)
    print("\nseconds: best of --repeat runs (baseline and MSMT17: one run, MSMT17 under tracemalloc)")
    print("speedup: vs the baseline loop; for evaluate_features vs distances + baseline loop")
    print("peak = tracemalloc peak during the call (input not counted); peak_x_distmat = peak / (Q*G*4 bytes)")
    print("rss = resident-memory peak above the start of the call, sampled every 2 ms (torch's buffers too)")
    print(format_table(rows, list(rows[0]), floatfmt=".4g"))
    if args.json:
        from reid.evaluation.report import write_json

        memory = "peak_MiB: tracemalloc peak during the call; rss_MiB: resident-memory peak above its start"
        write_json({"rows": rows, "memory": memory}, args.json)


if __name__ == "__main__":
    main()
