"""reid.gemm: both float32 kernels give the product to float32 accuracy; the choice is checked and overridable."""

import numpy as np
import pytest
import torch

from reid import gemm
from reid.errors import ReidError


@pytest.fixture
def kernel(monkeypatch, request):
    """Force one kernel for the test, and forget the process's choice before and after."""
    monkeypatch.setenv("REID_GEMM", request.param)
    gemm.gemm_kernel.cache_clear()
    yield request.param
    gemm.gemm_kernel.cache_clear()


@pytest.mark.parametrize("kernel", ["blas", "onednn"], indirect=True)
@pytest.mark.parametrize("shape", [(1, 3, 1), (37, 129, 53), (300, 2048, 70)])
def test_product_matches_float64(kernel, shape):
    m, k, n = shape
    rng = np.random.default_rng(m + k + n)
    a, b = (rng.standard_normal((r, k)).astype(np.float32) for r in (m, n))
    got = gemm.matmul_nt(torch.from_numpy(a), torch.from_numpy(b))
    assert got.shape == (m, n) and got.dtype == torch.float32
    # float32 accumulation: error grows like sqrt(k) ulps of the row norms' product
    np.testing.assert_allclose(got.numpy(), a.astype(np.float64) @ b.T.astype(np.float64), atol=2e-5 * k, rtol=0)
    assert gemm.gemm_kernel() in ("blas", kernel)  # onednn only if it passed its agreement check


@pytest.mark.parametrize("kernel", ["onednn"], indirect=True)
def test_strided_empty_and_float64_operands_take_torch_matmul(kernel):
    a = torch.arange(24.0).view(4, 6)
    b = torch.arange(18.0).view(6, 3).T  # (3, 6), not contiguous
    np.testing.assert_array_equal(gemm.matmul_nt(a, b).numpy(), (a @ b.T).numpy())
    assert gemm.matmul_nt(torch.zeros(0, 6), b).shape == (0, 3)
    d = torch.randn(5, 4, dtype=torch.float64)
    assert gemm.matmul_nt(d, d).dtype == torch.float64


def test_an_unknown_kernel_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("REID_GEMM", "fast")
    gemm.gemm_kernel.cache_clear()
    try:  # a ReidError: the CLI prints it as one line, no traceback
        with pytest.raises(ReidError, match="REID_GEMM must be one of auto, blas, onednn; got 'fast'"):
            gemm.gemm_kernel()
    finally:
        gemm.gemm_kernel.cache_clear()
