"""Training throughput: images per second of full training steps (loader + forward + Group Loss +
backward + Adam), and the data pipeline's share of the step time.

    python tools/bench_train.py                          # CPU; + GPU fp32 vs AMP when CUDA is there
    python tools/bench_train.py --steps 10 --workers 2 --json runs/bench_train.json
    python tools/bench_train.py --skip-r50               # only the demo model

Cases: the demo model (timm resnet10t, 128x64, P x K = 8 x 4 = 32 images) and ResNet-50 at
256x128 with a batch of 64 (16 x 4; only --r50-steps steps on the CPU, it is slow). Data:
generated Market-format JPEGs (128x64) through the real train loader and transform.
`wait` is the time spent waiting for the next batch, `compute` the rest of the step
(CUDA synchronised); `data share` = wait / (wait + compute). The first step (warm-up) is
not counted. Ratios are against fp32 on the same device in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from reid.config import ModelConfig
from reid.data.datasets import build_dataset
from reid.data.loaders import train_loader
from reid.data.synthetic import SynthSpec, generate
from reid.data.transforms import Preprocess, TrainTransform
from reid.engine.precision import autocast
from reid.losses import build_loss
from reid.models import build_model

CASES = {
    "demo resnet10t 128x64 8x4": ("timm:resnet10t", 128, 64, 8, 4),
    "resnet50 256x128 16x4": ("resnet50", 256, 128, 16, 4),
}


def bench_case(records, backbone, height, width, p, k, device, dtype, steps, workers) -> dict:
    """Time `steps` training steps after one warm-up step; returns images/s and the wait share."""
    torch.manual_seed(0)
    num_classes = len({r.pid for r in records})
    model = build_model(ModelConfig(backbone=backbone), num_classes).to(device).train()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    criterion = build_loss({"group": {}}, num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    pre = Preprocess(height, width)
    loader = train_loader(records, TrainTransform(pre), p, k, seed=0, workers=workers,
                          pin_memory=device.type == "cuda")  # fmt: skip
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    wait = compute = 0.0
    images = done = 0
    epoch = 0
    while done < steps + 1:
        loader.batch_sampler.set_epoch(epoch)
        iterator = iter(loader)
        while done < steps + 1:
            tick = time.perf_counter()
            try:
                batch, labels, _, _ = next(iterator)
            except StopIteration:
                break
            got = time.perf_counter()
            batch, labels = batch.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            if device.type == "cuda":
                batch = batch.contiguous(memory_format=torch.channels_last)
            with autocast(device, dtype):
                out = model(batch)
            loss, _ = criterion(out["features"].float(), out["logits"].float(), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            sync()
            end = time.perf_counter()
            if done > 0:  # the first step warms up (allocations, cudnn autotune, worker start)
                wait, compute, images = wait + got - tick, compute + end - got, images + len(labels)
            done += 1
        epoch += 1
    total = wait + compute
    return {"images_per_s": images / total, "compute_images_per_s": images / compute, "data_share": wait / total,
            "steps": steps, "batch": p * k}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8, help="timed steps for the demo model")
    parser.add_argument("--r50-steps", type=int, default=2, help="timed ResNet-50 steps on the CPU")
    parser.add_argument("--gpu-steps", type=int, default=30, help="timed steps of each case on a GPU")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-r50", action="store_true")
    parser.add_argument("--cpu-bf16", action="store_true", help="also time bf16 autocast on the CPU")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp) / "synthetic-market", SynthSpec(identities=80, images_per_identity=8, seed=0),
                 progress=False)  # fmt: skip
        records = build_dataset("synthetic", tmp).train
        plans = [(torch.device("cpu"), "fp32", None)]
        if args.cpu_bf16:
            plans.append((torch.device("cpu"), "bf16", torch.bfloat16))
        if torch.cuda.is_available():
            gpu = torch.device("cuda")
            half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            plans += [(gpu, "fp32", None), (gpu, "amp " + str(half).split(".")[-1], half)]
        rows = []
        for name, (backbone, h, w, p, k) in CASES.items():
            if args.skip_r50 and backbone == "resnet50":
                continue
            base = {}
            for device, mode, dtype in plans:
                steps = (
                    args.gpu_steps
                    if device.type == "cuda"
                    else (args.r50_steps if backbone == "resnet50" else args.steps)
                )
                result = bench_case(records, backbone, h, w, p, k, device, dtype, steps, args.workers)
                base.setdefault(device.type, result["images_per_s"])
                result.update(case=name, device=device.type, mode=mode,
                              vs_fp32=result["images_per_s"] / base[device.type])  # fmt: skip
                rows.append(result)
                print(f"  {name:<28} {device.type:<4} {mode:<9} {result['images_per_s']:8.1f} img/s", flush=True)

    header = (
        f"{'case':<28} {'device':<6} {'mode':<9} {'img/s':>8} {'compute img/s':>14} {'data share':>10} {'vs fp32':>8}"
    )
    print("\n" + header)
    for r in rows:
        print(f"{r['case']:<28} {r['device']:<6} {r['mode']:<9} {r['images_per_s']:>8.1f} "
              f"{r['compute_images_per_s']:>14.1f} {100 * r['data_share']:>9.1f}% {r['vs_fp32']:>7.2f}x")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"torch": torch.__version__, "cpu_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                "machine": platform.machine(), "workers": args.workers,
                "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}  # fmt: skip
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
