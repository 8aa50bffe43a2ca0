"""CPU feature extraction: every FeatureExtractor backend against a naive per-image loop, in one run.

    python tools/bench_extract.py                              # ResNet-50 256x128 and resnet10t 64x32, batch 32
    python tools/bench_extract.py --images 64 --models small --json runs/bench_extract.json

Methods (each reads and decodes the same JPEG files in every pass; decoding is part of the job):
  naive      the per-image loop of common toolboxes' extractors: PIL decode, torchvision
             Resize/ToTensor/Normalize, one forward per image under torch.no_grad.
  torch-old  FeatureExtractor's torch path as it was: OpenCV batch, channels-last, inference_mode,
             BatchNorm layers run as such. It is the float32 PyTorch reference of the cosine columns.
  torch      backend="torch": the same with each Conv2d -> BatchNorm2d pair folded into one convolution.
  ort        backend="onnxruntime": the network exported to ONNX in memory, onnxruntime CPU, float32.
  openvino   backend="openvino": the same ONNX graph compiled by OpenVINO's CPU plugin, float32.
  ort-int8   backend="onnxruntime", quantize="int8": onnxruntime dynamic int8 quantisation.
The "default" column names what backend="auto" (the default) picks here.

Timing: after one warm-up slice each, the methods take turns on slices of max(batch, 32) images
(rotating who goes first), so load changes on a shared machine hit all alike; images/s = images /
total time. Memory: "held MB" is the resident-memory growth when the method is built (weights,
compiled graph); "peak MB" is the largest resident-memory rise above the start of one call, the
first (warm-up) call included (activations, buffers), sampled every 2 ms. Cosines compare the
L2-normalised features with torch-old on the same images (naive differs also because PIL's
antialiased resize is not OpenCV's bilinear).

Rank-1/mAP: the small model is trained for --train-epochs on a generated synthetic-market set (the
demo recipe, `reid train -c configs/demo.yaml`), then each method extracts query and gallery and
`evaluate_rank` scores cosine distances; the change is against torch-old. ResNet-50 is random-init.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reid.config import ModelConfig  # noqa: E402
from reid.data.synthetic import SynthSpec, generate, make_camera, make_identity, render_person  # noqa: E402
from reid.data.transforms import Preprocess  # noqa: E402
from reid.inference.extractor import FeatureExtractor  # noqa: E402
from reid.inference.extractor_backends import installed  # noqa: E402
from reid.models.reid_model import build_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rss import PeakRss, rss_mb  # noqa: E402

MODELS = {"r50": ("resnet50", 256, 128), "small": ("timm:resnet10t", 64, 32)}


def make_crops(folder: Path, n: int, seed: int = 0) -> list[str]:
    """n JPEG person crops of varying size (64-320 px high, aspect 0.35-0.6)."""
    rng = np.random.default_rng(seed)
    cams = [make_camera(rng) for _ in range(4)]
    paths = []
    for i in range(n):
        h = int(rng.integers(64, 321))
        w = max(16, int(h * rng.uniform(0.35, 0.6)))
        paths.append(str(folder / f"{i:04d}.jpg"))
        cv2.imwrite(
            paths[-1], render_person(make_identity(rng), cams[i % 4], (h, w), rng), [cv2.IMWRITE_JPEG_QUALITY, 90]
        )
    return paths


class Naive:
    """One image at a time through PIL and torchvision transforms."""

    def __init__(self, model: torch.nn.Module, pre: Preprocess) -> None:
        from torchvision import transforms

        self.model = model.eval()
        self.transform = transforms.Compose(
            [transforms.Resize((pre.height, pre.width)), transforms.ToTensor(), transforms.Normalize(pre.mean, pre.std)]
        )

    @torch.no_grad()
    def __call__(self, paths: list[str]) -> np.ndarray:
        from PIL import Image

        out = []
        for path in paths:
            x = self.transform(Image.open(path).convert("RGB")).unsqueeze(0)
            out.append(torch.nn.functional.normalize(self.model(x), dim=1))
        return torch.cat(out).numpy()


def build_methods(model: torch.nn.Module, pre: Preprocess, batch: int) -> tuple[dict, dict]:
    """The methods to compare, and the resident memory each added when built (MB)."""
    factories = {
        "naive": lambda: Naive(copy.deepcopy(model), pre),
        "torch-old": lambda: _unfolded(model, pre, batch),
        "torch": lambda: FeatureExtractor.from_model(copy.deepcopy(model), pre, "cpu", batch, backend="torch"),
    }
    if installed("onnxruntime"):
        factories["ort"] = lambda: FeatureExtractor.from_model(
            copy.deepcopy(model), pre, "cpu", batch, backend="onnxruntime"
        )
    if installed("openvino"):
        factories["openvino"] = lambda: FeatureExtractor.from_model(
            copy.deepcopy(model), pre, "cpu", batch, backend="openvino"
        )
    if installed("onnxruntime"):
        factories["ort-int8"] = lambda: FeatureExtractor.from_model(
            copy.deepcopy(model), pre, "cpu", batch, backend="onnxruntime", quantize="int8"
        )
    methods, held = {}, {}
    for name, factory in factories.items():
        before = rss_mb()
        methods[name] = factory()
        held[name] = rss_mb() - before
    return methods, held


def _unfolded(model: torch.nn.Module, pre: Preprocess, batch: int) -> FeatureExtractor:
    extractor = FeatureExtractor.from_model(copy.deepcopy(model), pre, "cpu", batch, backend="torch")
    extractor.model = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)  # BN not folded
    return extractor


def interleaved(methods: dict, paths: list[str], slice_size: int, repeats: int) -> tuple[dict, dict, dict]:
    """images/s, peak call memory (MB) and features (path order) of each method on alternating slices."""
    seconds, peak = dict.fromkeys(methods, 0.0), dict.fromkeys(methods, 0.0)
    for name, fn in methods.items():
        with PeakRss() as mem:
            fn(paths[: min(len(paths), slice_size)])  # warm-up: allocations, kernels, caches
        peak[name] = mem.peak - mem.start
    feats: dict[str, list] = {name: [] for name in methods}
    names = list(methods)
    for _ in range(repeats):
        for n, start in enumerate(range(0, len(paths), slice_size)):
            chunk = paths[start : start + slice_size]
            for name in names[n % len(names) :] + names[: n % len(names)]:
                with PeakRss() as mem:
                    begin = time.perf_counter()
                    out = methods[name](chunk)
                    seconds[name] += time.perf_counter() - begin
                peak[name] = max(peak[name], mem.peak - mem.start)
                feats[name].append(out)
    speeds = {name: repeats * len(paths) / seconds[name] for name in methods}
    return speeds, peak, {name: np.concatenate(f[: -(-len(paths) // slice_size)]) for name, f in feats.items()}


def train_small(tmp: Path, epochs: int, identities: int) -> tuple[Path, Path]:
    """The demo recipe trained for `epochs` on a generated synthetic-market set: (run folder, data root)."""
    root = tmp / "data"
    generate(root / "synthetic-market", SynthSpec(identities=identities, seed=0), progress=False)
    run = tmp / "run"
    overrides = [f"data.root={root}", f"train.epochs={epochs}", "train.snapshot_epochs=[]", "train.device=cpu",
                 "train.eval_every=0", "optim.warmup_epochs=0", "data.workers=0"]  # fmt: skip
    cmd = [
        sys.executable,
        "-c",
        "from reid.cli import main; main()",
        "train",
        "-c",
        "configs/demo.yaml",
        "--quiet",
        "--output",
        str(run),
    ]
    subprocess.run(cmd + overrides, check=True, cwd=Path(__file__).resolve().parents[1])
    return run, root


def rank_scores(methods: dict, root: Path) -> dict:
    """rank-1 and mAP (%) of each method on the synthetic query/gallery split."""
    from reid.data.datasets import build_dataset
    from reid.evaluation import evaluate_rank

    data = build_dataset("synthetic", root)
    query, gallery = data.query, data.gallery
    scores = {}
    for name, fn in methods.items():
        q = fn([str(r.path) for r in query])
        g = fn([str(r.path) for r in gallery])
        result = evaluate_rank(
            1 - q @ g.T,
            np.array([r.pid for r in query]),
            np.array([r.pid for r in gallery]),
            np.array([r.camid for r in query]),
            np.array([r.camid for r in gallery]),
        )
        scores[name] = {"rank1": 100 * float(result.cmc[0]), "mAP": 100 * float(result.mAP)}
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--train-epochs", type=int, default=4, help="small model's training (0: random init, no rank)")
    parser.add_argument("--identities", type=int, default=100, help="synthetic identities for the rank-1/mAP check")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    from reid.inference.extractor_backends import resolve_backend
    from reid.test_time import DEFAULTS

    default = resolve_backend("auto", torch.device("cpu"), False, DEFAULTS, None)
    print(
        f"{args.images} JPEG crops, batch {args.batch_size}, {args.threads} threads, {args.repeats} interleaved "
        f"pass(es); backend='auto' picks {default} here"
    )
    result = {
        "images": args.images,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "default": default,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        paths = make_crops(tmp, args.images)
        for key in args.models:
            backbone, height, width = MODELS[key]
            pre, root = Preprocess(height, width), None
            if key == "small" and args.train_epochs > 0:
                from reid.models.loading import load_model

                run, root = train_small(tmp, args.train_epochs, args.identities)
                model, pre, _, _ = load_model(run, "cpu")
            else:
                model = build_model(ModelConfig(backbone=backbone, pretrained=False), num_classes=751).eval()
            methods, held = build_methods(model, pre, args.batch_size)
            speeds, peak, feats = interleaved(methods, paths, max(args.batch_size, 32), args.repeats)
            ref = feats["torch-old"]
            rows = {}
            for name in methods:
                cosine = (feats[name] * ref).sum(1)
                rows[name] = {
                    "images_per_s": speeds[name],
                    "vs_naive": speeds[name] / speeds["naive"],
                    "held_mb": held[name],
                    "peak_mb": peak[name],
                    "max_cos_diff": float(1 - cosine.min()),
                    "mean_cos_diff": float(1 - cosine.mean()),
                }
            if root is not None:
                for name, score in rank_scores(methods, root).items():
                    rows[name].update(score)
            label = f"{backbone} {height}x{width}" + (
                f", trained {args.train_epochs} epochs" if root else ", random init"
            )
            result["models"][label] = rows
            print_table(label, rows, default)
    if args.json:
        from reid.io.atomic import write_text

        write_text(args.json, json.dumps(result, indent=2))
        print(f"wrote {args.json}")


def print_table(label: str, rows: dict, default: str) -> None:
    ref = rows["torch-old"]
    print(f"\n{label}")
    print(
        f"{'method':<10} {'img/s':>8} {'vs naive':>8} {'held MB':>8} {'peak MB':>8} {'max 1-cos':>10} "
        f"{'mean 1-cos':>10} {'rank-1':>7} {'mAP':>6} {'d rank-1':>8} {'d mAP':>6}"
    )
    for name, row in rows.items():
        tag = " *" if name == {"onnxruntime": "ort"}.get(default, default) else ""
        rank = (
            f"{row['rank1']:>7.1f} {row['mAP']:>6.1f} "
            f"{row['rank1'] - ref['rank1']:>+8.1f} {row['mAP'] - ref['mAP']:>+6.1f}"
            if "rank1" in row
            else f"{'-':>7} {'-':>6} {'-':>8} {'-':>6}"
        )
        print(
            f"{name + tag:<10} {row['images_per_s']:>8.1f} {row['vs_naive']:>7.2f}x {row['held_mb']:>8.0f} "
            f"{row['peak_mb']:>8.0f} {row['max_cos_diff']:>10.1e} {row['mean_cos_diff']:>10.1e} {rank}",
            flush=True,
        )
    print("* = the default (backend='auto')")


if __name__ == "__main__":
    main()
