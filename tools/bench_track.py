"""What re-ID features buy inside DeepSORT, against the best tracker without them, and what they cost per frame.

    python tools/bench_track.py -m runs/demo-track                       # 3 seeded crossing scenes
    python tools/bench_track.py -m runs/demo-track --seeds 0 1 2 3 --json runs/bench_track.json

Scenes (tools/make_mot_sequence.py, cached under --scenes): 640x360, --frames frames, 3
people walking at random, 3 pairs crossing at the same depth (the nearer hides the other),
1 person leaving and re-entering; detections miss 10% of people and everyone less than 40%
visible, boxes jittered by 5%, 0.3 false positives per frame.

Methods, all deep-sort-realtime's Kalman filter and track life cycle:
  iou        DeepSORT without appearance (--appearance none): its IoU stage only, which never
             resumes a track missed for two frames
  motion     DeepSORT's cascade with the Mahalanobis motion cost alone (--appearance motion)
  sort       IoU on Kalman-predicted boxes of all tracks, SORT-style (--appearance sort)
  best-motion  the best of motion / sort over a grid of n_init, max_age, max_iou_distance
             (tuned on these very scenes, so it flatters the baseline, not the features)
  random     a random unit vector per detection
  untrained  the checkpoint's architecture with its random initial weights (seed 0)
  trained    the checkpoint (-m), DeepSORT defaults (n_init 3, max_age 30, gate 0.3)
  trained+sort the checkpoint with best-motion's n_init / max_age / max_iou_distance, and after
             the appearance cascade SORT's IoU stage over every unmatched track (--iou-all-tracks)
HOTA, IDF1, MOTA are TrackEval's, averaged over scenes; IDSW summed; frames/s is over all
frames of all scenes (reading frames included); embed/track are ms per frame, wall and CPU
time of this process (on a shared machine CPU time is the fairer figure).

Throughput: scenes with 12, 25, 38 people and no misses give ~10, 22, 31 given detections per
frame (no detector runs); per frame and per backend (torch eager vs onnxruntime, same run):
crops (clip, crop, resize into one batch), forward (normalise, network, L2), tracker
(DeepSORT update), and the embedding's share of crops + forward + tracker.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reid.inference.extractor import FeatureExtractor  # noqa: E402
from reid.models.loading import load_model  # noqa: E402
from reid.models.reid_model import build_model  # noqa: E402
from reid.tracking.adapter import TRACKING_BACKENDS, resolve_backend  # noqa: E402
from reid.tracking.io import read_mot_rows  # noqa: E402
from reid.tracking.metrics import evaluate_tracks  # noqa: E402
from reid.tracking.runner import TrackerOptions, make_embedder, make_tracker, mot_frames, track  # noqa: E402

TOOL = Path(__file__).with_name("make_mot_sequence.py")


def _make_sequence():
    spec = importlib.util.spec_from_file_location("make_mot_sequence", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_sequence


def scene(root: Path, name: str, **kwargs) -> Path:
    """The scene folder, generated once (a stamp file records the arguments)."""
    out = root / name
    stamp = json.dumps(kwargs, sort_keys=True)
    if not (out / "stamp.json").is_file() or (out / "stamp.json").read_text() != stamp:
        print(f"generating {out} ...", flush=True)
        _make_sequence()(out, name=name, **kwargs)
        (out / "stamp.json").write_text(stamp)
    return out


def extractors(checkpoint: str, batch_size: int, backend: str) -> dict[str, FeatureExtractor]:
    model, pre, config, state = load_model(checkpoint, "cpu")
    torch.manual_seed(0)
    untrained = build_model(config.model, int(state["num_classes"]))
    return {
        "untrained": FeatureExtractor.from_model(untrained, pre, "cpu", batch_size=batch_size, backend=backend),
        "trained": FeatureExtractor.from_model(model, pre, "cpu", batch_size=batch_size, backend=backend),
    }


def run(seq: Path, appearance: str, extractor, options: TrackerOptions, images: bool = True):
    info, frames = mot_frames(seq, need_images=images)
    result = track(
        frames,
        make_embedder(appearance, extractor),
        make_tracker(options, appearance),
        options,
        total=info.length,
        progress=False,
    )
    metrics = evaluate_tracks(read_mot_rows(seq / "gt" / "gt.txt"), result.rows, info.length)
    return result, metrics


GRID = {"n_init": (1, 2, 3), "max_age": (15, 30, 60), "max_iou_distance": (0.7, 0.9)}


def tune_motion(seqs: list[Path]) -> tuple[str, dict, float]:
    """The motion-only method and settings with the best mean IDF1 on `seqs` (frames not decoded)."""
    best = ("sort", {}, -1.0)
    for method in ("motion", "sort"):
        for n_init, max_age, max_iou in itertools.product(*GRID.values()):
            knobs = {"n_init": n_init, "max_age": max_age, "max_iou_distance": max_iou}
            options = TrackerOptions(**knobs)
            idf1 = float(np.mean([run(seq, method, None, options, images=False)[1]["IDF1"] for seq in seqs]))
            if idf1 > best[2]:
                best = (method, knobs, idf1)
    return best


def quality_row(metrics: list[dict], frames: int, secs: dict, cpu: dict, dets: int) -> dict:
    return {
        **{k: float(np.mean([m[k] for m in metrics])) for k in ("HOTA", "IDF1", "MOTA", "AssA")},
        "IDSW": int(sum(m["IDSW"] for m in metrics)),
        "IDs": int(sum(m["IDs"] for m in metrics)),
        "GT_IDs": int(sum(m["GT_IDs"] for m in metrics)),
        "frames_per_s": frames / secs["total"],
        "dets_per_frame": dets / frames,
        **{f"{k}_ms": 1000 * secs[k] / frames for k in ("embed", "track")},
        **{f"{k}_cpu_ms": 1000 * cpu[k] / frames for k in ("embed", "track")},
    }


def quality(seqs, methods, per_scene) -> dict:
    rows = {}
    for method, (appearance, extractor, options) in methods.items():
        metrics, frames, secs, cpu, dets = [], 0, {}, {}, 0
        for seq in seqs:
            result, m = run(seq, appearance, extractor, options)
            metrics.append(m)
            per_scene.append({"method": method, "scene": seq.name, **m, "frames_per_s": result.fps})
            frames, dets = frames + result.frames, dets + result.detections
            for key in result.seconds:
                secs[key] = secs.get(key, 0.0) + result.seconds[key]
                cpu[key] = cpu.get(key, 0.0) + result.cpu_seconds[key]
            print(
                f"  {method:<11} {seq.name}: IDF1 {100 * m['IDF1']:.1f} HOTA {100 * m['HOTA']:.1f} IDSW {m['IDSW']}",
                flush=True,
            )
        rows[method] = quality_row(metrics, frames, secs, cpu, dets)
    return rows


def print_quality(rows: dict, seqs: list[Path], args, per_scene: list[dict], best_label: str) -> dict:
    print(
        f"\n{len(seqs)} scenes x {args.frames} frames (seeds {' '.join(map(str, args.seeds))}), "
        f"{rows['iou']['GT_IDs']} true identities; means over scenes, IDSW summed; best-motion = {best_label}"
    )
    print(
        f"{'method':<12} {'HOTA':>6} {'IDF1':>6} {'MOTA':>6} {'AssA':>6} {'IDSW':>5} {'IDs':>5} {'frames/s':>9} "
        f"{'embed ms (CPU)':>15} {'track ms (CPU)':>15}"
    )
    for method, r in rows.items():
        print(
            f"{method:<12} {100 * r['HOTA']:>6.1f} {100 * r['IDF1']:>6.1f} {100 * r['MOTA']:>6.1f} "
            f"{100 * r['AssA']:>6.1f} {r['IDSW']:>5} {r['IDs']:>5} {r['frames_per_s']:>9.1f} "
            f"{r['embed_ms']:>7.1f} ({r['embed_cpu_ms']:>5.1f}) {r['track_ms']:>7.1f} ({r['track_cpu_ms']:>5.1f})"
        )
    idf1 = {(d["method"], d["scene"]): d["IDF1"] for d in per_scene}
    baselines = [m for m in ("iou", "motion", "sort", "best-motion") if m in rows]
    best = max(baselines, key=lambda m: rows[m]["IDF1"])
    margins = {
        "vs_iou": 100 * (rows["trained"]["IDF1"] - rows["iou"]["IDF1"]),
        "vs_best_no_appearance": 100 * (rows["trained"]["IDF1"] - rows[best]["IDF1"]),
        "best_no_appearance": best,
        "per_scene_vs_best": [100 * (idf1["trained", q.name] - idf1[best, q.name]) for q in seqs],
    }
    per = " ".join(f"{m:+.1f}" for m in margins["per_scene_vs_best"])
    print(
        f"trained IDF1 vs iou: {margins['vs_iou']:+.1f} points; vs the best no-appearance row ({best}): "
        f"{margins['vs_best_no_appearance']:+.1f} points (per scene {per})"
    )
    if "trained+sort" in rows:
        per_scene_sort = [100 * (idf1["trained+sort", q.name] - idf1[best, q.name]) for q in seqs]
        margins["trained+sort_vs_best_no_appearance"] = 100 * (rows["trained+sort"]["IDF1"] - rows[best]["IDF1"])
        margins["trained+sort_per_scene_vs_best"] = per_scene_sort
        print(
            f"trained+sort IDF1 vs {best}: {margins['trained+sort_vs_best_no_appearance']:+.1f} points "
            f"(per scene {' '.join(f'{m:+.1f}' for m in per_scene_sort)})"
        )
    return margins


def throughput(root: Path, people_list, model_extractors: dict, options: TrackerOptions) -> list[dict]:
    """Per-stage ms per frame at 10-30 given detections, for each backend's trained extractor."""
    out = []
    print(
        "\nthroughput, trained model, given detections (no detector), one thread, ms per frame, CPU (wall):\n"
        f"{'backend':<12} {'dets/frame':>10} {'crops':>14} {'forward':>14} {'tracker':>14} {'embed share':>12}"
    )
    for people in people_list:
        seq = scene(
            root,
            f"DENSE-{people:02d}",
            frames=30,
            width=960,
            height=360,
            people=people,
            false_positives=0.0,
            seed=100 + people,
            miss_rate=0.0,
            empty_frame=False,
        )
        for backend, extractor in model_extractors.items():
            run(seq, "model", extractor, options)  # warm-up: first calls allocate
            result, _ = run(seq, "model", extractor, options)
            n = result.frames
            ms = {k: 1000 * result.seconds[k] / n for k in ("crops", "forward", "track")}
            cpu = {k: 1000 * result.cpu_seconds[k] / n for k in ("crops", "forward", "track")}
            share = (cpu["crops"] + cpu["forward"]) / sum(cpu.values())
            out.append(
                {
                    "backend": backend,
                    "people": people,
                    "dets_per_frame": result.detections / n,
                    "ms": ms,
                    "cpu_ms": cpu,
                    "embed_share_cpu": share,
                }
            )
            print(
                f"{backend:<12} {result.detections / n:>10.1f} "
                + " ".join(f"{cpu[k]:>6.1f} ({ms[k]:>5.1f})" for k in ("crops", "forward", "track"))
                + f" {100 * share:>11.0f}%",
                flush=True,
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", required=True, help="trained checkpoint or run folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--scenes", default="datasets/mot-bench", help="where the generated scenes are cached")
    parser.add_argument("--max-cosine-distance", type=float, default=0.3)
    parser.add_argument(
        "--backend", default="auto", choices=TRACKING_BACKENDS, help="backend of the quality rows (auto: onnxruntime)"
    )
    parser.add_argument(
        "--backends", nargs="*", default=["torch", "onnxruntime"], help="backends compared in the throughput part"
    )
    parser.add_argument("--no-tune", action="store_true", help="skip the grid search of the motion-only baseline")
    parser.add_argument(
        "--throughput", type=int, nargs="*", default=[12, 25, 38], help="people per dense scene (~10, 22, 31 dets)"
    )
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = Path(args.scenes)
    options = TrackerOptions(max_cosine_distance=args.max_cosine_distance)
    seqs = [
        scene(
            root,
            f"CROSS-{seed:02d}",
            frames=args.frames,
            width=640,
            height=360,
            people=3,
            false_positives=0.3,
            seed=seed,
            crossings=3,
            reentries=1,
            miss_rate=0.1,
            min_visibility=0.4,
            empty_frame=False,
        )
        for seed in args.seeds
    ]
    backend = resolve_backend(args.backend, "cpu")
    models = extractors(args.model, 64, backend)
    methods = {"iou": ("none", None, options), "motion": ("motion", None, options), "sort": ("sort", None, options)}
    best_label, tuned = "not tuned (--no-tune)", None
    if not args.no_tune:
        method, knobs, _ = tune_motion(seqs)
        tuned = {"method": method, **knobs}
        best_label = f"{method} " + " ".join(f"{k}={v}" for k, v in knobs.items())
        methods["best-motion"] = (method, None, TrackerOptions(max_cosine_distance=args.max_cosine_distance, **knobs))
    methods.update({"random": ("random", None, options), **{k: ("model", v, options) for k, v in models.items()}})
    if tuned:  # the trained features with the tuned baseline's track management, and SORT's IoU stage after them
        knobs = {k: v for k, v in tuned.items() if k != "method"}
        methods["trained+sort"] = (
            "model",
            models["trained"],
            TrackerOptions(max_cosine_distance=args.max_cosine_distance, iou_all_tracks=True, **knobs),
        )
    per_scene: list[dict] = []
    rows = quality(seqs, methods, per_scene)
    margins = print_quality(rows, seqs, args, per_scene, best_label)
    through = []
    if args.throughput:
        by_backend = {b: extractors(args.model, 64, b)["trained"] for b in args.backends}
        through = throughput(root, args.throughput, by_backend, options)
    if args.json:
        from reid.io.atomic import atomic_path

        record = {
            "table": rows,
            "margins": margins,
            "tuned_motion": tuned,
            "scenes": per_scene,
            "throughput": through,
            "backend": backend,
            "args": vars(args),
            "torch_threads": 1,
        }
        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
