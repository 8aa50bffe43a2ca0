"""Time and peak memory of the retrieval protocol (Recall@K, MAP@R, NMI) at benchmark scale,
with generated features, against the obvious dense implementation.

Cases: Cars196 test size (8,131 images, 98 classes) and SOP test size (60,502 images,
11,316 classes of 2-12 images), 512-d float32 features = class centre + noise, cosine.
Rows per case:
  - dense baseline: the full N x N distance matrix, then a stable argsort of every row
    (what most metric-learning code does); run only where N x N fits (--dense-max);
  - ours: reid.evaluation.evaluate_retrieval, row chunks of ~64 MiB, never N x N;
  - NMI: k-means with one cluster per class, on all images (Cars) or on whole classes
    sampled up to 10,000 images (SOP, as the protocol does).
Memory is the tracemalloc peak of the allocations made during the call (NumPy reports
its buffers), so the input features are not counted. Wall time depends on the machine's
load; CPU time (this process, all its threads) much less, so the speed-up is on CPU time.
The baseline runs in the same process for comparison.

    PYTHONPATH=. python tools/bench_retrieval.py [--sop-scale 1.0] [--json PATH]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np

from reid.evaluation import pairwise_distances
from reid.evaluation.protocol import NMI_SAMPLE_IMAGES
from reid.evaluation.report import format_table, write_json
from reid.evaluation.retrieval import evaluate_retrieval, sampled_kmeans_nmi


def generated(num_images: int, num_classes: int, dim: int = 512, noise: float = 4.0, seed: int = 0):
    """(features float32 (N, D), labels (N,)): every class gets >= 2 images, the rest spread at random."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.repeat(np.arange(num_classes), 2), rng.integers(0, num_classes, num_images)])
    labels = np.sort(labels[:num_images])
    centres = rng.standard_normal((num_classes, dim), dtype=np.float32) / np.sqrt(dim)
    feats = centres[labels] + (noise / np.sqrt(dim)) * rng.standard_normal((num_images, dim), dtype=np.float32)
    return feats, labels


def dense_baseline(feats: np.ndarray, labels: np.ndarray, ks=(1, 2, 4, 8)) -> tuple[dict, float]:
    """N x N cosine distances, self set to +inf, stable argsort per row; Recall@K and MAP@R."""
    d = pairwise_distances(feats, feats, "cosine")
    np.fill_diagonal(d, np.inf)
    hits_at, aps = {k: [] for k in ks}, []
    for i in range(len(labels)):
        rel = labels[np.argsort(d[i], kind="stable")[:-1]] == labels[i]
        r = int(rel.sum())
        if r == 0:
            continue
        first = int(np.argmax(rel))
        for k in ks:
            hits_at[k].append(first < k)
        top = np.flatnonzero(rel[:r])
        aps.append(np.sum(np.arange(1, len(top) + 1) / (top + 1)) / r)
    return {k: float(np.mean(v)) for k, v in hits_at.items()}, float(np.mean(aps))


def measure(fn):
    """(wall seconds, CPU seconds of this process, tracemalloc peak bytes, result) of one call."""
    gc.collect()
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, cpu, peak, out


def run_case(name: str, feats, labels, ks, dense_max: int, nmi_max: int | None) -> list[dict]:
    n = len(labels)
    dense_bytes = n * n * 4
    rows = []

    def add(method, fn, base=None):
        seconds, cpu, peak, out = measure(fn)
        recall, m_ap, nmi = out
        rows.append({
            "case": name, "images": n, "classes": len(np.unique(labels)), "method": method,
            "wall_s": round(seconds, 2), "cpu_s": round(cpu, 2), "peak_MiB": round(peak / 2**20, 1),
            "peak_x_NxN": round(peak / dense_bytes, 3),
            "recall@1": None if recall is None else round(recall[ks[0]], 4),
            "map@r": None if m_ap is None else round(m_ap, 4), "nmi": None if nmi is None else round(nmi, 4),
            "cpu_speedup": round(base / cpu, 1) if base else None,
        })  # fmt: skip
        print(format_table(rows[-1:], list(rows[-1]), floatfmt=".4g"), flush=True)
        return cpu, out

    base = None
    if n <= dense_max:
        base, (recall_b, map_b, _) = add(
            "dense N x N + argsort (baseline)", lambda: (*dense_baseline(feats, labels, ks), None)
        )
    else:
        print(f"{name}: dense baseline skipped, its N x N matrix alone is {dense_bytes / 2**30:.1f} GiB", flush=True)

    def ours():
        res = evaluate_retrieval(feats, labels, ks, with_nmi=False)
        return res.recall, res.map_at_r, None

    _, (recall_o, map_o, _) = add("evaluate_retrieval (chunked)", ours, base)
    if base is not None:
        assert all(abs(recall_o[k] - recall_b[k]) < 1e-9 for k in ks) and abs(map_o - map_b) < 1e-9, "disagree"
    label = "NMI, all images" if nmi_max is None or n <= nmi_max else f"NMI, classes sampled to {nmi_max:,} images"
    add(label, lambda: (None, None, sampled_kmeans_nmi(feats, labels, nmi_max)[0]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the rows to this JSON file")
    ap.add_argument("--sop-scale", type=float, default=1.0, help="scale of the SOP-size case (1: 60,502 images)")
    ap.add_argument("--dense-max", type=int, default=20_000, help="run the dense baseline up to this many images")
    ap.add_argument("--no-sop", action="store_true")
    ap.add_argument("--no-cars", action="store_true")
    args = ap.parse_args()
    rows = []
    if not args.no_cars:
        feats, labels = generated(8131, 98)
        rows += run_case("Cars196 test", feats, labels, (1, 2, 4, 8), args.dense_max, None)
    if not args.no_sop:
        n, c = round(60502 * args.sop_scale), round(11316 * args.sop_scale)
        feats, labels = generated(n, c, seed=1)
        rows += run_case(
            f"SOP test x{args.sop_scale:g}", feats, labels, (1, 10, 100, 1000), args.dense_max, NMI_SAMPLE_IMAGES
        )
    print()
    print(format_table(rows, list(rows[0]), floatfmt=".4g"))
    if args.json:
        write_json(rows, args.json)


if __name__ == "__main__":
    main()
