"""What re-ID features buy inside DeepSORT: IoU-only vs random vs untrained vs trained features.

    python tools/bench_track.py -m runs/demo                       # 3 seeded crossing scenes
    python tools/bench_track.py -m runs/demo --seeds 0 1 2 3 --frames 150 --json runs/bench_track.json

Scenes (tools/make_mot_sequence.py, cached under --scenes): 640x360, --frames frames, 3
people walking at random, 3 pairs crossing at the same depth (the nearer hides the other),
1 person leaving and re-entering; detections miss 10% of people and everyone less than 40%
visible, boxes jittered by 5%, 0.3 false positives per frame.

Methods, all the same DeepSORT (deep-sort-realtime, max_age 30, n_init 3):
  iou        appearance cascade off (--appearance none): IoU on Kalman-predicted boxes
  random     a random unit vector per detection
  untrained  the checkpoint's architecture with its random initial weights (seed 0)
  trained    the checkpoint (-m)
HOTA, IDF1, MOTA are TrackEval's, averaged over scenes; IDSW summed; frames/s is over all
frames of all scenes (reading frames included); embed/track are ms per frame, wall and CPU
time of this process (on a shared machine CPU time is the fairer figure).

Throughput: scenes with 10, 20, 30 people and no misses give 10-30 detections per frame;
the trained model's embedding time per frame is compared with DeepSORT's own time.
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


def extractors(checkpoint: str, batch_size: int) -> dict[str, FeatureExtractor]:
    model, pre, config, state = load_model(checkpoint, "cpu")
    torch.manual_seed(0)
    untrained = build_model(config.model, int(state["num_classes"]))
    return {
        "untrained": FeatureExtractor.from_model(untrained, pre, "cpu", batch_size=batch_size),
        "trained": FeatureExtractor.from_model(model, pre, "cpu", batch_size=batch_size),
    }


def run(seq: Path, method: str, extractor, options: TrackerOptions):
    appearance = {"iou": "none", "random": "random"}.get(method, "model")
    info, frames = mot_frames(seq)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", required=True, help="trained checkpoint or run folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--scenes", default="datasets/mot-bench", help="where the generated scenes are cached")
    parser.add_argument("--max-cosine-distance", type=float, default=0.3)
    parser.add_argument("--throughput", type=int, nargs="*", default=[10, 20, 30], help="people per dense scene")
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
    models = extractors(args.model, 64)
    methods = {"iou": None, "random": None, **models}
    rows, per_scene = {}, []
    for method, extractor in methods.items():
        metrics, frames, secs, cpu, dets = [], 0, {}, {}, 0
        for seq in seqs:
            result, m = run(seq, method, extractor, options)
            metrics.append(m)
            per_scene.append({"method": method, "scene": seq.name, **m, "frames_per_s": result.fps})
            frames, dets = frames + result.frames, dets + result.detections
            for key in result.seconds:
                secs[key] = secs.get(key, 0.0) + result.seconds[key]
                cpu[key] = cpu.get(key, 0.0) + result.cpu_seconds[key]
            print(
                f"  {method:<9} {seq.name}: IDF1 {100 * m['IDF1']:.1f} HOTA {100 * m['HOTA']:.1f} IDSW {m['IDSW']}",
                flush=True,
            )
        rows[method] = {
            **{k: float(np.mean([m[k] for m in metrics])) for k in ("HOTA", "IDF1", "MOTA", "AssA")},
            "IDSW": int(sum(m["IDSW"] for m in metrics)),
            "IDs": int(sum(m["IDs"] for m in metrics)),
            "GT_IDs": int(sum(m["GT_IDs"] for m in metrics)),
            "frames_per_s": frames / secs["total"],
            "dets_per_frame": dets / frames,
            **{f"{k}_ms": 1000 * secs[k] / frames for k in ("embed", "track")},
            **{f"{k}_cpu_ms": 1000 * cpu[k] / frames for k in ("embed", "track")},
        }
    print(
        f"\n{len(seqs)} scenes x {args.frames} frames (seeds {' '.join(map(str, args.seeds))}), "
        f"{rows['iou']['GT_IDs']} true identities; means over scenes, IDSW summed"
    )
    header = (
        f"{'method':<10} {'HOTA':>6} {'IDF1':>6} {'MOTA':>6} {'AssA':>6} {'IDSW':>5} {'IDs':>5} {'frames/s':>9} "
        f"{'embed ms (CPU)':>15} {'track ms (CPU)':>15}"
    )
    print(header)
    for method, r in rows.items():
        print(
            f"{method:<10} {100 * r['HOTA']:>6.1f} {100 * r['IDF1']:>6.1f} {100 * r['MOTA']:>6.1f} "
            f"{100 * r['AssA']:>6.1f} {r['IDSW']:>5} {r['IDs']:>5} {r['frames_per_s']:>9.1f} "
            f"{r['embed_ms']:>7.1f} ({r['embed_cpu_ms']:>5.1f}) {r['track_ms']:>7.1f} ({r['track_cpu_ms']:>5.1f})"
        )
    gain = 100 * (rows["trained"]["IDF1"] - rows["iou"]["IDF1"])
    print(f"trained vs iou: IDF1 {gain:+.1f} points")
    through = []
    if args.throughput:
        print(f"\nthroughput, trained model, ms per frame: {'dets/frame':>10} {'embed (CPU)':>16} {'track (CPU)':>16}")
        for people in args.throughput:
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
            result, _ = run(seq, "trained", models["trained"], options)
            ms = {k: 1000 * result.seconds[k] / result.frames for k in ("embed", "track")}
            cpu = {k: 1000 * result.cpu_seconds[k] / result.frames for k in ("embed", "track")}
            through.append(
                {"people": people, "dets_per_frame": result.detections / result.frames, "ms": ms, "cpu_ms": cpu}
            )
            print(
                f"{'':<41} {result.detections / result.frames:>10.1f} {ms['embed']:>7.1f} ({cpu['embed']:>6.1f}) "
                f"{ms['track']:>7.1f} ({cpu['track']:>6.1f})"
            )
    if args.json:
        from reid.io.atomic import atomic_path

        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(
                json.dumps(
                    {"table": rows, "scenes": per_scene, "throughput": through, "args": vars(args), "torch_threads": 1},
                    indent=2,
                )
                + "\n"
            )
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
