"""The float32 product a @ b.T on the fastest exact CPU kernel of this machine.

Why: the Gram products bound re-ranking and evaluation at scale, and torch's CPU
float32 GEMM (MKL) takes a generic path on some CPUs: on the AMD EPYC (Zen 5,
AVX-512) development machine it ran at 150-170 GFLOP/s, while oneDNN's float32
kernel (the one torch uses for linear layers of mkldnn models) ran the same
products at 300-440 GFLOP/s. Both are plain float32 with float32 accumulation
(no reduced precision); they differ only in summation order, i.e. in the last
bits. `gemm_kernel()` picks one per process by timing both once on a small
product and checking that they agree; ``REID_GEMM=blas`` or ``REID_GEMM=onednn``
forces one. CUDA tensors and other dtypes always take torch's own matmul.
"""

from __future__ import annotations

import functools
import os
import time

import torch

from reid.errors import SettingError

__all__ = ["KERNELS", "gemm_kernel", "matmul_nt"]

KERNELS = ("blas", "onednn")
_MARGIN = 1.15  # oneDNN must be this much faster to be chosen: no flapping between near-equal kernels
_CALIBRATION = (768, 1024, 768)  # (M, K, N) of the timing product: ~1.2 GFLOP, a few ms per kernel


def _onednn_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")


@functools.cache
def gemm_kernel() -> str:
    """The kernel `matmul_nt` uses for CPU float32 tensors in this process: "blas" or "onednn"."""
    forced = os.environ.get("REID_GEMM", "auto")
    if forced not in (*KERNELS, "auto"):
        raise SettingError(f"REID_GEMM must be one of auto, {', '.join(KERNELS)}; got {forced!r}")
    if forced == "blas":
        return "blas"
    m, k, n = _CALIBRATION
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=gen), torch.randn(n, k, generator=gen)
    try:
        ref, got = a @ b.T, _onednn_nt(a, b)
    except (RuntimeError, AttributeError, NotImplementedError):  # op missing from this torch build
        return "blas"
    if not torch.allclose(got, ref, rtol=1e-4, atol=1e-3 * k**0.5):
        return "blas"
    if forced == "onednn":
        return "onednn"
    best = {"blas": float("inf"), "onednn": float("inf")}
    for _ in range(3):  # interleaved, best of three: robust to a burst of load
        for name, fn in (("blas", lambda: a @ b.T), ("onednn", lambda: _onednn_nt(a, b))):
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return "onednn" if best["blas"] > _MARGIN * best["onednn"] else "blas"


def matmul_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a (M, K) @ b (N, K).T as a new (M, N) tensor: contiguous float32 CPU operands on `gemm_kernel()`."""
    if (
        a.device.type == "cpu"
        and a.dtype == torch.float32
        and b.dtype == torch.float32
        and a.ndim == 2
        and b.ndim == 2
        and a.numel() > 0
        and b.numel() > 0
        and a.is_contiguous()
        and b.is_contiguous()
        and gemm_kernel() == "onednn"
    ):
        return _onednn_nt(a, b)
    return a @ b.T
