"""Minimal reproduction of the CPU bfloat16 fault: the ops we run under CPU bf16 autocast, per shape.

    python tools/repro_cpu_bf16.py                       # the table, this machine's ISA, the self-check cost
    python tools/repro_cpu_bf16.py --repeats 10 --threads 2 --json runs/repro_cpu_bf16.json
    ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 python tools/repro_cpu_bf16.py   # the same with AMX off (compare)

Each row runs one op of the demo model (timm resnet10t, 64x32 input, batch 32 = 8 ids x 4)
forward and backward in float32 once and in bf16 autocast `--repeats` times, and reports: all
outputs/gradients finite? the largest |bf16 - fp32| / |fp32| (L2), and whether the bf16 repeats
agree bit for bit. The "NaN-isolation" rows are the known oneDNN AMX fault (issue 5717: the AMX
brgemm kernels read past the K tail, K % 32 != 0, so NaN in one sample leaks into another):
sample 0 is finite, the others NaN, and sample 0's output must stay finite. The last rows run the
whole demo model (a training step, and inference as FeatureExtractor(half=True) does).
On AVX2 / AVX-512 CPUs every row passes; on an affected AMX CPU some row shows NaN or "no".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reid.config import load_config  # noqa: E402
from reid.models import build_model  # noqa: E402
from reid.models.cpu_bf16 import (  # noqa: E402
    SECONDS,
    TOLERANCE,
    OpResult,
    check_isolation,
    check_op,
    compare_runs,
    cpu_bf16_problem,
    cpu_isa,
    run_self_check,
)

# every distinct convolution of the demo model at the demo batch: (N, C_in, H, W, C_out, kernel, stride)
DEMO_CONVS = (
    (32, 3, 64, 32, 24, 3, 2), (32, 24, 32, 16, 32, 3, 1), (32, 32, 32, 16, 64, 3, 1), (32, 64, 16, 8, 64, 3, 1),
    (32, 64, 16, 8, 128, 3, 2), (32, 128, 8, 4, 128, 3, 1), (32, 64, 8, 4, 128, 1, 1), (32, 128, 8, 4, 256, 3, 2),
    (32, 256, 4, 2, 256, 3, 1), (32, 128, 4, 2, 256, 1, 1), (32, 256, 4, 2, 512, 3, 2), (32, 512, 2, 1, 512, 3, 1),
    (32, 256, 2, 1, 512, 1, 1), (1, 40, 4, 4, 64, 1, 1), (1, 24, 8, 4, 32, 1, 1),
)  # fmt: skip
DEMO_LINEARS = ((32, 512, 100), (8, 512, 100), (32, 33, 64), (32, 100, 48))
ISOLATION_LINEAR = ((16, 33, 64), (32, 100, 64), (64, 48, 16), (8, 40, 512))
ISOLATION_CONV = ((24, 64, 4, 4), (40, 32, 2, 2), (48, 64, 8, 4), (100, 32, 2, 1))


def op_rows(repeats: int) -> list[OpResult]:
    gen = torch.Generator().manual_seed(0)
    rows = []
    for n, cin, h, w, cout, k, s in DEMO_CONVS:
        x = torch.randn(n, cin, h, w, generator=gen).contiguous(memory_format=torch.channels_last)
        weight = torch.randn(cout, cin, k, k, generator=gen) / (cin * k * k) ** 0.5
        gamma, beta = torch.rand(cout, generator=gen) + 0.5, torch.randn(cout, generator=gen) * 0.1
        shape = f"{n}x{cin}x{h}x{w} -> {cout} k{k}s{s}"
        rows.append(check_op("conv", shape, lambda x, wt, s=s, k=k: F.conv2d(x, wt, stride=s, padding=k // 2),
                             [x, weight], repeats))  # fmt: skip

        def conv_bn_relu(x, wt, g, b, s=s, k=k):
            return F.relu(F.batch_norm(F.conv2d(x, wt, stride=s, padding=k // 2), None, None, g, b, training=True))

        rows.append(check_op("conv+bn+relu", shape, conv_bn_relu, [x, weight, gamma, beta], repeats))
    for n, cin, cout in DEMO_LINEARS:
        x, weight = torch.randn(n, cin, generator=gen), torch.randn(cout, cin, generator=gen) / cin**0.5
        gamma, beta = torch.rand(cin, generator=gen) + 0.5, torch.randn(cin, generator=gen) * 0.1
        rows.append(check_op("linear", f"{n}x{cin} -> {cout}", F.linear, [x, weight], repeats))
        rows.append(check_op("bn1d+linear", f"{n}x{cin} -> {cout}",
                             lambda x, wt, g, b: F.linear(F.batch_norm(x, None, None, g, b, training=True), wt),
                             [x, weight, gamma, beta], repeats))  # fmt: skip
    for rows_, k, cout in ISOLATION_LINEAR:
        x, weight = torch.randn(rows_, k, generator=gen), torch.randn(cout, k, generator=gen) / k**0.5
        rows.append(check_isolation("linear NaN-isolation", f"{rows_}x{k} -> {cout}", F.linear, x, weight,
                                    repeats=repeats))  # fmt: skip
    for cin, cout, h, w in ISOLATION_CONV:
        x = torch.randn(2, cin, h, w, generator=gen).contiguous(memory_format=torch.channels_last)
        weight = torch.randn(cout, cin, 1, 1, generator=gen) / cin**0.5
        rows.append(check_isolation("conv1x1 NaN-isolation", f"2x{cin}x{h}x{w} -> {cout}", F.conv2d, x, weight,
                                    repeats=repeats))  # fmt: skip
    return rows


def model_rows(repeats: int) -> list[OpResult]:
    """The whole demo model: a training step (loss on features and logits) and an inference batch."""
    torch.manual_seed(0)
    model = build_model(load_config(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml").model, 100)
    model = model.to(memory_format=torch.channels_last)
    images = torch.randn(32, 3, 64, 32).contiguous(memory_format=torch.channels_last)
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def train_step(x):
        model.load_state_dict(state)  # same BN statistics every repeat
        model.train()
        out = model(x)
        return out["features"].float().square().mean() + out["logits"].float().logsumexp(1).mean()

    def infer(x):
        model.load_state_dict(state)
        model.eval()
        return model(x)

    def grads(bf16: bool) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = train_step(images)
        loss.backward()
        return [loss.detach().float().reshape(1)] + [
            p.grad.detach().clone() for p in model.parameters() if p.grad is not None
        ]

    # bf16 rounding compounds through ~10 batch-norm backward passes: ~0.3 L2 off fp32 on a random-init
    # model is normal here; garbage is >= 1, NaN is inf
    runs = [grads(True) for _ in range(repeats)]
    rows = [OpResult("demo model train step", "32x3x64x32", *compare_runs(grads(False), runs), tolerance=0.6)]
    with torch.no_grad():
        ref = [infer(images[:8]).float()]
        runs = []
        for _ in range(repeats):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                runs.append([infer(images[:8]).float()])
    rows.append(OpResult("demo model inference", "8x3x64x32", *compare_runs(ref, runs)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="bf16 runs per op (they must agree bit for bit)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is; the fault needs >1)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"cpu: {cpu_isa()}")
    onednn = re.search(r"MKL-DNN (v[\d.]+)", torch.__config__.show())
    print(f"torch {torch.__version__}, oneDNN {onednn.group(1) if onednn else 'unknown'}")
    print(f"threads {torch.get_num_threads()}, repeats {args.repeats}, tolerance {TOLERANCE} (L2 relative)\n")
    problem = cpu_bf16_problem()  # first: its cost includes creating the oneDNN kernels, as in a real run
    first_ms = 1000 * SECONDS[torch.get_num_threads()]
    rows = op_rows(args.repeats) + model_rows(args.repeats)
    print(f"{'op':<24} {'shape':<28} {'finite':>6} {'max diff vs fp32':>17} {'deterministic':>13} {'ok':>3}")
    print("-" * 96)
    for r in rows:
        print(f"{r.op:<24} {r.shape:<28} {'yes' if r.finite else 'NO':>6} {r.max_rel_diff:>17.2e} "
              f"{'yes' if r.deterministic else 'NO':>13} {'yes' if r.ok else 'NO':>3}")  # fmt: skip
    times = []
    for _ in range(3):
        start = time.perf_counter()
        run_self_check()
        times.append(time.perf_counter() - start)
    print(f"\nself-check (reid.models.cpu_bf16, cached per process): {'pass' if problem is None else problem}; "
          f"cost {first_ms:.0f} ms first call, {1000 * min(times):.0f} ms warm (best of 3)")  # fmt: skip
    bad = [r for r in rows if not r.ok]
    print(f"{len(rows) - len(bad)}/{len(rows)} rows ok" + ("" if not bad else "; CPU bf16 is NOT safe here"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        from reid.io.atomic import atomic_path

        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(json.dumps({"cpu": cpu_isa(), "env": os.environ.get("ONEDNN_MAX_CPU_ISA"),
                                             "rows": [r.__dict__ for r in rows]}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
