"""Forward+backward time of each loss, and the Group Loss's share of a ResNet-50 training step.

    PYTHONPATH=$PWD python tools/bench_losses.py [--sizes 32 64 128 256 512] [--json out.json]

Part 1 times loss(embeddings, logits, labels) + backward on leaf tensors (n x d embeddings, n x m
logits, P x K = n/4 x 4 labels) for group, ce, triplet, ranked_list, center; median of repeats.
Part 2 times full training steps of a randomly initialised torchvision ResNet-50 (+ BN neck and an
m-way classifier; forward, Group Loss, backward, SGD step) at batch 64, 256x128, and in the same run
the Group Loss alone at that batch; the share is loss time / step time. Everything runs on the CPU
with the threads given (default: torch's). Numbers are noisy on a shared machine: compare columns
of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from reid.losses import build_loss

LOSS_NAMES = ("group", "ce", "triplet", "ranked_list", "center")


def time_call(fn: Callable[[], None], min_repeats: int, min_seconds: float) -> list[float]:
    """Run fn once to warm up, then at least `min_repeats` times and `min_seconds`; times in ms."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t0))
        if len(times) >= 200:
            break
    return times


def loss_step(name: str, n: int, dim: int, classes: int, gen: torch.Generator) -> Callable[[], None]:
    """A closure computing one loss's forward and backward on fresh leaf tensors of batch n."""
    spec = {name: {"feat_dim": dim} if name == "center" else {}}
    loss = build_loss(spec, classes)
    labels = torch.randperm(classes, generator=gen)[: n // 4].repeat_interleave(4)
    emb = torch.randn(n, dim, generator=gen)
    logits = torch.randn(n, classes, generator=gen)
    anchor_gen = torch.Generator().manual_seed(0)

    def step() -> None:
        e = emb.clone().requires_grad_()
        z = logits.clone().requires_grad_()
        total, _ = loss(e, z, labels, generator=anchor_gen)
        total.backward()

    return step


class ReidNet(nn.Module):
    """ResNet-50 trunk, global average pooling, BN neck, classifier: (embedding, logits)."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        import torchvision

        trunk = torchvision.models.resnet50(weights=None)
        trunk.fc = nn.Identity()
        self.trunk = trunk
        self.neck = nn.BatchNorm1d(2048)
        self.classifier = nn.Linear(2048, classes, bias=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.trunk(images)
        return feat, self.classifier(self.neck(feat))


def resnet_share(batch: int, classes: int, steps: int, gen: torch.Generator) -> dict[str, float | list[float]]:
    """Time `steps` ResNet-50 training steps with the Group Loss and the loss alone at the same batch."""
    torch.manual_seed(0)
    model = ReidNet(classes).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss = build_loss({"group": {}}, classes)
    images = torch.randn(batch, 3, 256, 128, generator=gen)
    labels = torch.randperm(classes, generator=gen)[: batch // 4].repeat_interleave(4)
    step_ms = []
    for _ in range(steps):
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        emb, logits = model(images)
        total, _ = loss(emb, logits, labels, generator=gen)
        total.backward()
        optimizer.step()
        step_ms.append(1e3 * (time.perf_counter() - t0))
    emb, logits = emb.detach(), logits.detach()

    def loss_only() -> None:
        e, z = emb.clone().requires_grad_(), logits.clone().requires_grad_()
        loss(e, z, labels, generator=gen)[0].backward()

    loss_ms = min(time_call(loss_only, 5, 1.0))
    best_step = min(step_ms)
    return {
        "step_ms": step_ms,
        "best_step_ms": best_step,
        "group_loss_best_ms": loss_ms,
        "share_percent": 100.0 * loss_ms / best_step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    parser.add_argument("--classes", type=int, default=751)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5, help="minimum timed repeats per cell")
    parser.add_argument("--min-seconds", type=float, default=0.5, help="minimum timed seconds per cell")
    parser.add_argument("--resnet-steps", type=int, default=2, help="0 skips the ResNet-50 part")
    parser.add_argument("--resnet-batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=str, default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)

    rows = []
    print(
        f"loss forward+backward, ms (best of repeats; medians in the JSON), m = {args.classes}, d = {args.dim}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(f"{'n':>5} " + " ".join(f"{name:>12}" for name in LOSS_NAMES) + f" {'group/triplet':>14}")
    for n in args.sizes:
        cells = {}
        for name in LOSS_NAMES:
            times = time_call(loss_step(name, n, args.dim, args.classes, gen), args.repeats, args.min_seconds)
            cells[name] = min(times)
            rows.append(
                {
                    "n": n,
                    "loss": name,
                    "median_ms": statistics.median(times),
                    "min_ms": cells[name],
                    "repeats": len(times),
                }
            )
        ratio = cells["group"] / cells["triplet"]
        print(f"{n:>5} " + " ".join(f"{cells[name]:>12.2f}" for name in LOSS_NAMES) + f" {ratio:>14.2f}")

    resnet = None
    if args.resnet_steps > 0:
        resnet = resnet_share(args.resnet_batch, args.classes, args.resnet_steps, gen)
        steps = ", ".join(f"{t / 1e3:.1f}" for t in resnet["step_ms"])
        print(
            f"\nResNet-50 training step, batch {args.resnet_batch}, 256x128, m = {args.classes}: "
            f"steps {steps} s (best {resnet['best_step_ms'] / 1e3:.1f} s); Group Loss fwd+bwd (best) "
            f"{resnet['group_loss_best_ms']:.1f} ms = {resnet['share_percent']:.2f}% of the step"
        )
    if args.json:
        result = {
            "config": {
                **vars(args),
                "threads_used": torch.get_num_threads(),
                "torch": torch.__version__,
                "machine": platform.processor() or platform.machine(),
            },
            "losses": rows,
            "resnet50": resnet,
        }
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
