"""What re-ID features buy inside DeepSORT against the best tracker without them, tuned fairly, and their cost.

    python tools/bench_track.py -m runs/demo-track runs/track-tiny --json runs/bench_track.json
    python tools/bench_track.py -m runs/track-tiny --seeds 0 1 2 --tune-seeds 100 101 102 --no-tune

Scenes (tools/make_mot_sequence.py, cached under --scenes as TURNS-<seed>): 640x360, --frames
(200) frames, 2 people walking at random, 2 pairs crossing at the same depth (the nearer hides
the other), 2 pairs who meet at the same depth and both turn back while one hides the other
(--turns: constant-velocity motion predicts the wrong continuation), 1 person leaving and
re-entering after 8-20 frames, 1 leaving early and coming back after 40-90 frames (--returns);
detections miss 10% of people and everyone less than 40% visible, boxes jittered by 5%, 0.3
false positives per frame; 11 true identities a scene.

Fair protocol: every tuned row's knobs are chosen by the best mean IDF1 on the TUNING scenes
(--tune-seeds, 100 101 102) and reported on the TEST scenes (--seeds, 0 1 2); the two seed sets
must be disjoint. Motion-only: motion / sort over n_init x max_age x max_iou_distance
(reid.tracking.tuning.MOTION_GRID); each model: the same grid x max_cosine_distance x
iou_all_tracks (APPEARANCE_GRID). A scene's features are computed once per model and replayed
for every grid point (reid.tracking.tuning.CachingEmbedder): the grid costs tracker time only.

Rows, all deep-sort-realtime's Kalman filter and track life cycle:
  iou / motion / sort   no appearance, DeepSORT's defaults (n_init 3, max_age 30, IoU gate 0.7):
                        its IoU stage only / its cascade with the Mahalanobis cost / SORT's IoU
  random                a random unit vector per detection, defaults
  untrained             the first model's architecture with random weights (seed 0), defaults
  MODEL                 each checkpoint (-m), DeepSORT's defaults (cosine gate 0.3)
  motion-only tuned     the best of motion / sort on the tuning scenes
  MODEL tuned           each checkpoint with its best knobs on the tuning scenes
HOTA, IDF1, MOTA, AssA are TrackEval's, averaged over the test scenes; IDSW and IDs summed;
embed/track are ms per frame, wall and CPU time of this process (on a shared machine CPU
time is the fairer figure); tuned model rows replay cached features (no embed time).

Throughput: scenes with 12, 25, 38 people and no misses give ~10, 22, 31 given detections per
frame (no detector runs); per model, per frame and per backend (--backends): read (decode the
960x360 JPEG frame), crops (clip, crop, resize into one batch), forward (normalise, network, L2),
tracker (DeepSORT update), the embedding's share of crops + forward + tracker, and its share of
the whole frame time (read included).
"""

from __future__ import annotations

import argparse
import importlib.util
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
from reid.tracking.runner import ModelEmbedder, TrackerOptions, make_embedder  # noqa: E402
from reid.tracking.tuning import (  # noqa: E402
    APPEARANCE_GRID,
    MOTION_GRID,
    CachingEmbedder,
    grid_points,
    needs_images,
    run_scene,
    tune,
)

TOOL = Path(__file__).with_name("make_mot_sequence.py")
# the scene recipe (see the module docstring); the seed and --frames are added per scene
SCENE = {
    "width": 640,
    "height": 360,
    "people": 2,
    "false_positives": 0.3,
    "crossings": 2,
    "turns": 2,
    "reentries": 1,
    "returns": 1,
    "miss_rate": 0.1,
    "min_visibility": 0.4,
    "empty_frame": False,
}


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


def scenes(root: Path, seeds: list[int], frames: int) -> list[Path]:
    return [scene(root, f"TURNS-{seed:03d}", frames=frames, seed=seed, **SCENE) for seed in seeds]


def check_split(test_seeds: list[int], tune_seeds: list[int]) -> None:
    """Tuning on a test scene would flatter whichever row was tuned: the two seed sets must not meet."""
    shared = sorted(set(test_seeds) & set(tune_seeds))
    if shared:
        raise ValueError(f"--tune-seeds and --seeds share {' '.join(map(str, shared))}: tune on other scenes")


def load_extractor(checkpoint: str, backend: str, untrained: bool = False) -> FeatureExtractor:
    """The checkpoint's extractor, or (untrained) its architecture with random weights (seed 0)."""
    model, pre, config, state = load_model(checkpoint, "cpu")
    if untrained:
        torch.manual_seed(0)
        model = build_model(config.model, int(state["num_classes"]))
    return FeatureExtractor.from_model(model, pre, "cpu", batch_size=64, backend=backend)


def model_label(checkpoint: str) -> str:
    path = Path(checkpoint)
    return path.parent.parent.name if path.suffix == ".pt" and path.parent.name == "checkpoints" else path.stem


def quality_row(metrics: list[dict], results: list) -> dict:
    frames = sum(r.frames for r in results)
    secs = {k: sum(r.seconds.get(k, 0.0) for r in results) for k in ("embed", "track", "total")}
    cpu = {k: sum(r.cpu_seconds.get(k, 0.0) for r in results) for k in ("embed", "track")}
    return {
        **{k: float(np.mean([m[k] for m in metrics])) for k in ("HOTA", "IDF1", "MOTA", "AssA")},
        "IDSW": int(sum(m["IDSW"] for m in metrics)),
        "IDs": int(sum(m["IDs"] for m in metrics)),
        "GT_IDs": int(sum(m["GT_IDs"] for m in metrics)),
        "frames_per_s": frames / max(secs["total"], 1e-9),
        "dets_per_frame": sum(r.detections for r in results) / frames,
        **{f"{k}_ms": 1000 * secs[k] / frames for k in ("embed", "track")},
        **{f"{k}_cpu_ms": 1000 * cpu[k] / frames for k in ("embed", "track")},
    }


def evaluate(seqs: list[Path], method: str, appearance: str, embedder_for, options, per_scene: list) -> dict:
    """One row: track every test scene with `options`, the scene's embedder from `embedder_for(seq)`."""
    metrics, results = [], []
    for seq in seqs:
        embedder = embedder_for(seq)
        result, m = run_scene(seq, appearance, embedder, options, needs_images(appearance, embedder))
        metrics.append(m)
        results.append(result)
        per_scene.append({"method": method, "scene": seq.name, **m, "frames_per_s": result.fps})
        print(f"  {method:<22} {seq.name}: IDF1 {100 * m['IDF1']:.1f} HOTA {100 * m['HOTA']:.1f} IDSW {m['IDSW']}")
    return quality_row(metrics, results)


def print_table(rows: dict, labels: dict) -> None:
    print(
        f"\n{'method':<22} {'HOTA':>6} {'IDF1':>6} {'MOTA':>6} {'AssA':>6} {'IDSW':>5} {'IDs':>5} "
        f"{'embed ms (CPU)':>15} {'track ms (CPU)':>15}  knobs"
    )
    for method, r in rows.items():
        print(
            f"{method:<22} {100 * r['HOTA']:>6.1f} {100 * r['IDF1']:>6.1f} {100 * r['MOTA']:>6.1f} "
            f"{100 * r['AssA']:>6.1f} {r['IDSW']:>5} {r['IDs']:>5} "
            f"{r['embed_ms']:>7.1f} ({r['embed_cpu_ms']:>5.1f}) {r['track_ms']:>7.1f} ({r['track_cpu_ms']:>5.1f})"
            f"  {labels.get(method, 'defaults')}"
        )


def margins(rows: dict, per_scene: list[dict], seqs: list[Path], baseline: str, models: list[str]) -> dict:
    """IDF1 points of each model row over `baseline`, mean over the test scenes and per scene."""
    idf1 = {(d["method"], d["scene"]): d["IDF1"] for d in per_scene}
    out = {"baseline": baseline}
    for method in models:
        per = [100 * (idf1[method, q.name] - idf1[baseline, q.name]) for q in seqs]
        out[method] = {"mean": 100 * (rows[method]["IDF1"] - rows[baseline]["IDF1"]), "per_scene": per}
        print(
            f"{method} IDF1 vs {baseline}: {out[method]['mean']:+.1f} points "
            f"(per scene {' '.join(f'{m:+.1f}' for m in per)})"
        )
    return out


def throughput(root: Path, people_list, extractors: dict, options: TrackerOptions) -> list[dict]:
    """Per-stage ms per frame at 10-30 given detections, for each (model, backend) extractor."""
    out = []
    print(
        "\nthroughput, given detections (no detector), one thread, ms per frame, CPU (wall):\n"
        f"{'model/backend':<28} {'dets/frame':>10} {'read':>14} {'crops':>14} {'forward':>14} {'tracker':>14} "
        f"{'embed share':>12} {'of frame':>9}"
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
        for name, extractor in extractors.items():
            run_scene(seq, "model", make_embedder("model", extractor), options)  # warm-up: first calls allocate
            result, _ = run_scene(seq, "model", make_embedder("model", extractor), options)
            n = result.frames
            stages = ("read", "crops", "forward", "track")  # read: decoding the frame's JPEG
            ms = {k: 1000 * result.seconds[k] / n for k in stages}
            cpu = {k: 1000 * result.cpu_seconds[k] / n for k in stages}
            embed = cpu["crops"] + cpu["forward"]
            share = embed / (embed + cpu["track"])  # of the tracker's own work
            frame_share = embed / sum(cpu.values())  # of the whole frame time, decoding included
            out.append(
                {
                    "model": name,
                    "people": people,
                    "dets_per_frame": result.detections / n,
                    "ms": ms,
                    "cpu_ms": cpu,
                    "embed_share_cpu": share,
                    "embed_share_of_frame_cpu": frame_share,
                }
            )
            print(
                f"{name:<28} {result.detections / n:>10.1f} "
                + " ".join(f"{cpu[k]:>6.1f} ({ms[k]:>5.1f})" for k in stages)
                + f" {100 * share:>11.0f}% {100 * frame_share:>8.0f}%",
                flush=True,
            )
    return out


def progress(label: str):
    def report(done: int, total: int) -> None:
        if done == total or done % 12 == 0:
            print(f"  tuning {label}: {done}/{total}", flush=True)

    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", required=True, nargs="+", help="trained checkpoints or run folders")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="test scenes (reported)")
    parser.add_argument("--tune-seeds", type=int, nargs="+", default=[100, 101, 102], help="tuning scenes")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--scenes", default="datasets/mot-bench", help="where the generated scenes are cached")
    parser.add_argument(
        "--backend", default="auto", choices=TRACKING_BACKENDS, help="backend of the quality rows (auto: onnxruntime)"
    )
    parser.add_argument(
        "--backends", nargs="*", default=["onnxruntime"], help="backends compared in the throughput part"
    )
    parser.add_argument("--no-tune", action="store_true", help="only the rows with DeepSORT's defaults")
    parser.add_argument(
        "--throughput", type=int, nargs="*", default=[12, 25, 38], help="people per dense scene (~10, 22, 31 dets)"
    )
    parser.add_argument(
        "--throughput-models", nargs="*", help="checkpoints timed in the throughput part (default: the -m ones)"
    )
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    try:
        check_split(args.seeds, args.tune_seeds)
    except ValueError as exc:
        parser.error(str(exc))
    torch.set_num_threads(1)
    root = Path(args.scenes)
    test, tuning = scenes(root, args.seeds, args.frames), scenes(root, args.tune_seeds, args.frames)
    backend = resolve_backend(args.backend, "cpu")
    labels = [model_label(m) for m in args.model]
    extractors = {label: load_extractor(m, backend) for label, m in zip(labels, args.model)}
    extractors["untrained"] = load_extractor(args.model[0], backend, untrained=True)
    cache = {}  # (model, scene) -> CachingEmbedder: each scene embedded once per model

    def embedder_for(label: str):
        def get(seq: Path):
            key = (label, seq.name)
            if key not in cache:
                cache[key] = CachingEmbedder(ModelEmbedder(extractors[label]))
            return cache[key]

        return get

    defaults = TrackerOptions()
    constant = {a: (lambda seq, a=a: make_embedder(a)) for a in ("none", "motion", "sort")}
    per_scene: list[dict] = []
    rows, knob_labels, tuned_record = {}, {}, {}
    print(f"test scenes {' '.join(q.name for q in test)}; tuning scenes {' '.join(q.name for q in tuning)}")
    for method, appearance in (("iou", "none"), ("motion", "motion"), ("sort", "sort")):
        rows[method] = evaluate(test, method, appearance, constant[appearance], defaults, per_scene)
    random = make_embedder("random")  # one stream over the scenes, as before
    rows["random"] = evaluate(test, "random", "random", lambda seq: random, defaults, per_scene)
    for label in ["untrained", *labels]:
        rows[label] = evaluate(test, label, "model", embedder_for(label), defaults, per_scene)
    if not args.no_tune:
        candidates = [(m, knobs) for m in ("motion", "sort") for knobs in grid_points(MOTION_GRID)]
        best = tune(tuning, candidates, lambda seq: make_embedder("sort"), defaults, progress("motion-only"))
        knob_labels["motion-only tuned"] = best.label()
        tuned_record["motion-only tuned"] = {"appearance": best.appearance, **best.knobs, "tune_IDF1": best.idf1}
        rows["motion-only tuned"] = evaluate(
            test, "motion-only tuned", best.appearance, constant[best.appearance], best.options, per_scene
        )
        for label in labels:
            candidates = [("model", knobs) for knobs in grid_points(APPEARANCE_GRID)]
            best = tune(tuning, candidates, embedder_for(label), defaults, progress(label))
            method = f"{label} tuned"
            knob_labels[method] = best.label()
            tuned_record[method] = {"appearance": "model", **best.knobs, "tune_IDF1": best.idf1}
            rows[method] = evaluate(test, method, "model", embedder_for(label), best.options, per_scene)
    print(
        f"\n{len(test)} test scenes x {args.frames} frames (seeds {' '.join(map(str, args.seeds))}), "
        f"{rows['iou']['GT_IDs']} true identities; knobs tuned on seeds {' '.join(map(str, args.tune_seeds))}; "
        "means over scenes, IDSW and IDs summed"
    )
    print_table(rows, knob_labels)
    result = {"vs_iou": margins(rows, per_scene, test, "iou", labels)}
    if not args.no_tune:
        result["tuned_vs_tuned_motion"] = margins(
            rows, per_scene, test, "motion-only tuned", [f"{label} tuned" for label in labels]
        )
    through = []
    if args.throughput:
        timed = args.throughput_models or args.model
        by = {f"{model_label(m)}/{b}": load_extractor(m, b) for m in timed for b in args.backends}
        through = throughput(root, args.throughput, by, defaults)
    if args.json:
        from reid.io.atomic import atomic_path

        record = {
            "table": rows,
            "knobs": tuned_record,
            "margins": result,
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
