"""Feature extraction throughput: images/s of a ResNet-50 re-ID model at 256x128, three ways.

    python tools/bench_extract.py                        # CPU, batch sizes 1 8 32 64, 128 JPEG crops
    python tools/bench_extract.py --images 64 --batch-sizes 1 32 --json runs/bench_extract.json

  naive  the per-image loop of common toolboxes' extractors: PIL decode, torchvision
         Resize/ToTensor/Normalize, one forward per image (torch.no_grad). Its speed does
         not depend on the batch size; it is re-measured in every row to keep the
         comparison fair on a shared machine.
  ours   reid.FeatureExtractor: OpenCV decode, resize into a preallocated batch,
         channels-last, torch.inference_mode (fp16 on CUDA).
  bf16   the same with half=True on the CPU: bfloat16 autocast, float32 weights.
  onnx   onnxruntime on the file `reid export --normalize-inside` writes, fed with
         the same OpenCV batch (CPU provider, or CUDA when installed and available).
  ort-be FeatureExtractor(backend="onnxruntime") (CPU): the extractor's own pipeline with
         onnxruntime running the network; "min cos" is its lowest cosine to `ours`.

Every method reads the same files from disk in each pass (decoding is part of the
job). For each batch size the three methods run one after another (interleaved), and
the three methods take turns on slices of max(batch, 32) images (rotating who goes first),
after one warm-up slice each; images/s = images / total time of the method.
The model is torchvision's ResNet-50 (random init, last stride 1, BNNeck) as `reid`
builds it; the crops are synthetic people of sizes 64-320 px high.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reid.config import ModelConfig  # noqa: E402
from reid.data.image_io import read_image  # noqa: E402
from reid.data.synthetic import make_camera, make_identity, render_person  # noqa: E402
from reid.data.transforms import Preprocess  # noqa: E402
from reid.inference.extractor import FeatureExtractor, resize_into  # noqa: E402
from reid.io.export import InferenceGraph, export_metadata, export_onnx  # noqa: E402
from reid.models.reid_model import build_model  # noqa: E402


def make_crops(folder: Path, n: int, seed: int = 0) -> list[str]:
    """n JPEG person crops of varying size (64-320 px high, aspect 0.35-0.6)."""
    rng = np.random.default_rng(seed)
    cams = [make_camera(rng) for _ in range(4)]
    paths = []
    for i in range(n):
        h = int(rng.integers(64, 321))
        w = max(16, int(h * rng.uniform(0.35, 0.6)))
        image = render_person(make_identity(rng), cams[i % 4], (h, w), rng)
        paths.append(str(folder / f"{i:04d}.jpg"))
        cv2.imwrite(paths[-1], image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return paths


class Naive:
    """One image at a time through PIL and torchvision transforms."""

    def __init__(self, model: torch.nn.Module, pre: Preprocess, device: torch.device) -> None:
        from torchvision import transforms

        self.model, self.device = model, device
        self.transform = transforms.Compose(
            [transforms.Resize((pre.height, pre.width)), transforms.ToTensor(), transforms.Normalize(pre.mean, pre.std)]
        )

    @torch.no_grad()
    def __call__(self, paths: list[str]) -> np.ndarray:
        from PIL import Image

        out = []
        for path in paths:
            image = Image.open(path).convert("RGB")
            x = self.transform(image).unsqueeze(0).to(self.device)
            out.append(torch.nn.functional.normalize(self.model(x), dim=1).cpu())
        return torch.cat(out).numpy()


class Onnx:
    """onnxruntime on the exported graph (normalisation inside), fed OpenCV-resized batches."""

    def __init__(self, path: Path, pre: Preprocess, batch_size: int, threads: int, cuda: bool) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.provider = self.session.get_providers()[0]
        self.pre, self.batch_size = pre, batch_size
        self.buffer = np.empty((batch_size, pre.height, pre.width, 3), np.uint8)

    def __call__(self, paths: list[str]) -> np.ndarray:
        out = []
        for start in range(0, len(paths), self.batch_size):
            batch = resize_into([read_image(p) for p in paths[start : start + self.batch_size]], self.pre, self.buffer)
            x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
            out.append(self.session.run(None, {"images": x})[0])
        return np.concatenate(out)


def interleaved(methods: dict, paths: list[str], slice_size: int, repeats: int) -> tuple[dict, dict]:
    """images/s of each method, measured on alternating slices of `paths` so that load changes on a
    shared machine hit every method alike (the order rotates each slice); features in path order."""
    for fn in methods.values():
        fn(paths[: min(len(paths), slice_size)])  # warm-up: allocations, kernels, caches
    seconds = dict.fromkeys(methods, 0.0)
    feats: dict[str, list] = {name: [] for name in methods}
    names = list(methods)
    for _ in range(repeats):
        for n, start in enumerate(range(0, len(paths), slice_size)):
            chunk = paths[start : start + slice_size]
            for name in names[n % len(names) :] + names[: n % len(names)]:
                begin = time.perf_counter()
                out = methods[name](chunk)
                seconds[name] += time.perf_counter() - begin
                feats[name].append(out)
    speeds = {name: repeats * len(paths) / seconds[name] for name in methods}
    return speeds, {name: np.concatenate(f[: -(-len(paths) // slice_size)]) for name, f in feats.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else (args.device if args.device != "auto" else "cpu")
    )
    pre = Preprocess(256, 128)
    model = build_model(ModelConfig(backbone="resnet50", pretrained=False), num_classes=751).eval()
    ours_model = copy.deepcopy(model)  # the extractor converts its model (channels-last, fp16) in place
    naive = Naive(model.to(device), pre, device)
    half = device.type == "cuda"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_crops(Path(tmp), args.images)
        onnx_path = Path(tmp) / "resnet50.onnx"
        if not args.no_onnx:
            graph = InferenceGraph(model.cpu(), pre, normalize_inside=True).eval()
            example = torch.zeros(2, 3, pre.height, pre.width)
            export_onnx(graph, example, onnx_path, export_metadata(pre, graph, 2048, {}))
            model.to(device)
        print(
            f"{args.images} JPEG crops, ResNet-50 256x128, device {device}{' fp16' if half else ''}, "
            f"{args.threads} torch threads, {args.repeats} interleaved pass(es)"
        )
        for bs in args.batch_sizes:
            methods = {
                "naive": naive,
                "ours": FeatureExtractor.from_model(ours_model, pre, device, batch_size=bs, half=half),
            }
            if device.type == "cpu":  # half=True on the CPU: bfloat16 autocast, float32 weights
                methods["ours_bf16"] = FeatureExtractor.from_model(ours_model, pre, device, batch_size=bs, half=True)
            if not args.no_onnx:
                methods["onnx"] = Onnx(onnx_path, pre, bs, args.threads, device.type == "cuda")
            if device.type == "cpu" and not args.no_onnx:  # FeatureExtractor(backend="onnxruntime")
                methods["ours_ort"] = FeatureExtractor.from_model(
                    copy.deepcopy(model).cpu(), pre, device, batch_size=bs, backend="onnxruntime"
                )
            speeds, feats = interleaved(methods, paths, max(bs, 32), args.repeats)
            row = {"batch_size": bs, **speeds}
            if not args.no_onnx:
                row["onnx_provider"] = methods["onnx"].provider
                row["onnx_vs_ours_max_abs_diff"] = float(np.abs(feats["onnx"] - feats["ours"]).max())
            # PIL's antialiased resize differs from OpenCV's bilinear: same model, slightly different inputs
            if "ours_ort" in feats:
                row["ours_ort_vs_ours_min_cosine"] = float((feats["ours_ort"] * feats["ours"]).sum(1).min())
            row["naive_vs_ours_mean_cosine"] = float((feats["naive"] * feats["ours"]).sum(1).mean())
            rows.append(row)
            print_row(row, header=len(rows) == 1)
    result = {
        "images": args.images,
        "model": "torchvision resnet50 (random init), 256x128",
        "device": str(device),
        "half": half,
        "threads": args.threads,
        "repeats": args.repeats,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "rows": rows,
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


def print_row(row: dict, header: bool) -> None:
    if header:
        print(
            f"{'batch':>5} {'naive img/s':>11} {'ours img/s':>10} {'bf16 img/s':>10} {'onnx img/s':>10} "
            f"{'ort-be img/s':>12} {'ours/naive':>10} {'bf16/naive':>10} {'onnx/naive':>10} {'ort-be/naive':>12} "
            f"{'ort-be min cos':>14}"
        )
    naive = row["naive"]

    def speed(key: str) -> str:
        return f"{row[key]:.1f}" if row.get(key) else "-"

    def ratio(key: str) -> str:
        return f"{row[key] / naive:.2f}x" if row.get(key) else "-"

    print(
        f"{row['batch_size']:>5} {naive:>11.1f} {speed('ours'):>10} {speed('ours_bf16'):>10} {speed('onnx'):>10} "
        f"{speed('ours_ort'):>12} {ratio('ours'):>10} {ratio('ours_bf16'):>10} {ratio('onnx'):>10} "
        f"{ratio('ours_ort'):>12} {row.get('ours_ort_vs_ours_min_cosine', float('nan')):>14.6f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
