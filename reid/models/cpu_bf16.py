"""Is bfloat16 autocast on this CPU safe? A per-process self-check of the ops the models run.

Why: on CPUs with AMX-bf16 (Intel Sapphire Rapids and later) some oneDNN builds give NaN or
run-to-run different results for bf16 convolutions/matmuls (the AMX brgemm kernels read past the
K tail of a tile, oneDNN issue 5717, fixed upstream in PR 5723; the torch wheels may ship an older
oneDNN). The same ops are exact on AVX-512-bf16 and AVX2 CPUs. So before the trainer
(`train.amp=bf16` on the CPU) or the extractor (`half=True` on the CPU) uses bf16, they call
`cpu_bf16_problem()`: it runs the demo model's convolution/batch-norm/linear shapes forward and
backward in float32 and in bf16 autocast, repeated, and reports the first op that is not finite,
not close to float32 or not repeatable, plus a row-isolation probe of the known AMX fault (NaN in
one sample must not leak into another). The result is cached for the process (about 0.1-0.3 s).
"""

from __future__ import annotations

import functools
import os
import platform
import time
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

SAFE_ISA_HINT = "start the process with ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 (AMX off) to keep bf16"

# (N, C_in, H, W, C_out, kernel, stride): the convolutions of the demo model (timm resnet10t,
# 64x32 input) up to 128 channels, on 2 images to keep the check cheap, plus an odd channel
# count (K % 32 != 0, the AMX tail case). tools/repro_cpu_bf16.py runs every layer at batch 32.
CONV_SHAPES: tuple[tuple[int, ...], ...] = (
    (2, 3, 64, 32, 24, 3, 2),
    (2, 24, 32, 16, 32, 3, 1),
    (2, 32, 32, 16, 64, 3, 1),
    (2, 64, 16, 8, 128, 3, 2),
    (2, 64, 8, 4, 128, 1, 1),
    (2, 128, 8, 4, 128, 3, 1),
    (8, 40, 6, 6, 24, 1, 1),
)
# (N, in, out): the embedding neck and the classifier (K = 512), and K tails 33 / 100.
LINEAR_SHAPES: tuple[tuple[int, int, int], ...] = ((32, 512, 100), (32, 33, 64), (16, 100, 48))
# row-isolation probes of the AMX K-tail fault: (rows, K, N) for linear, (C_in, C_out, H, W) for 1x1 conv
ISOLATION_LINEAR: tuple[tuple[int, int, int], ...] = ((16, 33, 64), (32, 100, 64), (32, 48, 16))
ISOLATION_CONV: tuple[tuple[int, int, int, int], ...] = ((24, 64, 4, 4), (40, 32, 2, 2))
REPEATS = 2  # bf16 runs per op: they must agree bit for bit
TOLERANCE = 0.25  # |bf16 - fp32| / |fp32| (L2): rounding gives up to ~0.07 through BN gradients, garbage ~1


class Bf16FallbackWarning(RuntimeWarning):
    """CPU bfloat16 was requested but is unsafe here: float32 is used instead."""


@dataclass
class OpResult:
    """One row of the self-check: an op, its shape, and what was seen."""

    op: str
    shape: str
    finite: bool
    max_rel_diff: float  # vs float32: the largest |bf16 - fp32| / |fp32| (L2 norms) over outputs and gradients
    deterministic: bool
    tolerance: float = TOLERANCE

    @property
    def ok(self) -> bool:
        return self.finite and self.deterministic and self.max_rel_diff <= self.tolerance


def cpu_isa() -> str:
    """The CPU and what oneDNN may use: 'AMD EPYC, torch AVX2, amx_bf16=no, ONEDNN_MAX_CPU_ISA=unset'."""
    flags, model = set(), platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
                elif line.startswith("model name") and model in ("", platform.machine()):
                    model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    capability = torch.backends.cpu.get_cpu_capability()
    amx = "yes" if "amx_bf16" in flags else ("no" if flags else "unknown")
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "unset"
    return f"{model}, torch {capability}, amx_bf16={amx}, avx512_bf16={'yes' if 'avx512_bf16' in flags else 'no'}, " \
        f"ONEDNN_MAX_CPU_ISA={limit}"  # fmt: skip


def compare_runs(ref: list[torch.Tensor], runs: list[list[torch.Tensor]]) -> tuple[bool, float, bool]:
    """(all finite, largest L2 relative difference to `ref`, all runs bit-identical)."""
    finite = all(bool(torch.isfinite(t).all()) for run in runs for t in run)
    rel = 0.0
    for run in runs:
        for a, b in zip(run, ref):
            scale = float(b.norm()) or 1.0
            diff = float((a.float() - b).norm()) / scale
            rel = max(rel, diff if diff == diff else float("inf"))
    same = all(torch.equal(a, b) for run in runs[1:] for a, b in zip(run, runs[0]))
    return finite, rel, same


def _run(fn, inputs: list[torch.Tensor], bf16: bool) -> list[torch.Tensor]:
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = fn(*leaves)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(7))
    out.float().backward(grad_out)
    return [out.detach().float()] + [leaf.grad.detach().clone() for leaf in leaves]


def check_op(op: str, shape: str, fn, inputs: list[torch.Tensor], repeats: int = REPEATS) -> OpResult:
    """`fn(*inputs)` forward and backward, float32 once and bf16 autocast `repeats` times."""
    ref = _run(fn, inputs, bf16=False)
    runs = [_run(fn, inputs, bf16=True) for _ in range(repeats)]
    return OpResult(op, shape, *compare_runs(ref, runs))


def check_isolation(
    op: str, shape: str, fn, x: torch.Tensor, *params: torch.Tensor, repeats: int = REPEATS
) -> OpResult:
    """Sample 0 is finite, every other sample NaN: sample 0's output must stay finite and right."""
    x = x.clone()
    ref = fn(x[:1], *params)
    x[1:] = float("nan")
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        runs = [[fn(x, *params)[:1].float()] for _ in range(repeats)]
    return OpResult(op, shape, *compare_runs([ref.detach()], runs))


def run_self_check() -> list[OpResult]:
    """Every op/shape of the self-check, in float32 vs bf16 autocast (uncached; see `cpu_bf16_problem`)."""
    gen = torch.Generator().manual_seed(0)
    results = []
    with torch.random.fork_rng(devices=[]):
        for n, cin, h, w, cout, k, s in CONV_SHAPES:
            x = torch.randn(n, cin, h, w, generator=gen).contiguous(memory_format=torch.channels_last)
            weight = torch.randn(cout, cin, k, k, generator=gen) / (cin * k * k) ** 0.5
            gamma, beta = torch.rand(cout, generator=gen) + 0.5, torch.randn(cout, generator=gen) * 0.1

            def conv_bn_relu(x, weight, gamma, beta, s=s, k=k):
                y = F.conv2d(x, weight, stride=s, padding=k // 2)
                return F.relu(F.batch_norm(y, None, None, gamma, beta, training=True))

            results.append(check_op("conv+bn+relu", f"{n}x{cin}x{h}x{w} -> {cout} k{k}s{s}", conv_bn_relu,
                                  [x, weight, gamma, beta]))  # fmt: skip
        for n, cin, cout in LINEAR_SHAPES:
            x, weight = torch.randn(n, cin, generator=gen), torch.randn(cout, cin, generator=gen) / cin**0.5
            gamma, beta = torch.rand(cin, generator=gen) + 0.5, torch.randn(cin, generator=gen) * 0.1

            def bn_linear(x, weight, gamma, beta):
                return F.linear(F.batch_norm(x, None, None, gamma, beta, training=True), weight)

            results.append(check_op("bn1d+linear", f"{n}x{cin} -> {cout}", bn_linear, [x, weight, gamma, beta]))
        for rows, k, cout in ISOLATION_LINEAR:
            x, weight = torch.randn(rows, k, generator=gen), torch.randn(cout, k, generator=gen) / k**0.5
            results.append(check_isolation("linear NaN-isolation", f"{rows}x{k} -> {cout}", F.linear, x, weight))
        for cin, cout, h, w in ISOLATION_CONV:
            x = torch.randn(2, cin, h, w, generator=gen).contiguous(memory_format=torch.channels_last)
            weight = torch.randn(cout, cin, 1, 1, generator=gen) / cin**0.5
            results.append(check_isolation("conv1x1 NaN-isolation", f"2x{cin}x{h}x{w} -> {cout}", F.conv2d, x, weight))
    return results


def describe(result: OpResult) -> str:
    """Why a row failed, in a few words."""
    what = [] if result.finite else ["not finite"]
    if result.finite and result.max_rel_diff > result.tolerance:
        what.append(f"{result.max_rel_diff:.2g} off float32")
    if not result.deterministic:
        what.append("differs between repeats")
    return f"{result.op} {result.shape}: {', '.join(what)}"


def find_problem() -> str | None:
    """Run the self-check now: None when every op passes, else the first failure (and how many more)."""
    bad = [r for r in run_self_check() if not r.ok]
    return describe(bad[0]) + (f" (+{len(bad) - 1} more)" if len(bad) > 1 else "") if bad else None


@functools.lru_cache(maxsize=8)
def _problem_with_threads(threads: int) -> str | None:
    start = time.perf_counter()
    problem = find_problem()
    SECONDS[threads] = time.perf_counter() - start
    return problem


SECONDS: dict[int, float] = {}  # what the self-check cost, per thread count


def cpu_bf16_problem() -> str | None:
    """None when bf16 autocast on this CPU passes the self-check, else why not.

    Cached per process and torch thread count (the AMX fault shows with several threads only).
    REID_CPU_BF16_SELF_CHECK=0 skips it (bf16 is then trusted as is).
    """
    if os.environ.get("REID_CPU_BF16_SELF_CHECK", "1") == "0":
        return None
    return _problem_with_threads(torch.get_num_threads())


def fallback_message(problem: str, where: str) -> str:
    """The one-line warning when CPU bf16 is refused."""
    return f"{where}: CPU bfloat16 failed its self-check ({problem}; {cpu_isa()}); using float32 instead. " \
        f"A known oneDNN fault on AMX CPUs: {SAFE_ISA_HINT}"  # fmt: skip


def cpu_bf16_allowed(where: str) -> bool:
    """Run (once) the self-check; warn with `Bf16FallbackWarning` and return False when bf16 is unsafe."""
    problem = cpu_bf16_problem()
    if problem is None:
        return True
    warnings.warn(fallback_message(problem, where), Bf16FallbackWarning, stacklevel=3)
    return False


__all__ = [
    "Bf16FallbackWarning", "OpResult", "check_isolation", "check_op", "cpu_bf16_allowed", "cpu_bf16_problem",
    "compare_runs", "cpu_isa", "describe", "find_problem", "run_self_check",
]  # fmt: skip
