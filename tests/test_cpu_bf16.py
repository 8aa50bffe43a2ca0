"""CPU bfloat16 is never silently wrong: the self-check finds injected faults, a failing self-check
falls back to float32 with a one-line warning (trainer and extractor), and a non-finite bf16 step
or batch is recomputed in float32. Faults are injected, so the tests pass on any CPU (AMX or not)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reid.config import load_config
from reid.inference.extractor import FeatureExtractor
from reid.models import cpu_bf16
from reid.models.cpu_bf16 import Bf16FallbackWarning, OpResult, compare_runs, describe

from .conftest import tiny_config_overrides
from .test_extractor import make_checkpoint

FAILED = "conv+bn+relu 2x24x32x16 -> 32 k3s1: not finite"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt")


@pytest.fixture
def failing_self_check(monkeypatch):
    monkeypatch.setattr(cpu_bf16, "cpu_bf16_problem", lambda: FAILED)


@pytest.fixture
def passing_self_check(monkeypatch):
    monkeypatch.setattr(cpu_bf16, "cpu_bf16_problem", lambda: None)


def test_compare_runs_flags_nan_drift_and_nonrepeatable_runs():
    ref = [torch.ones(4, 3)]
    assert compare_runs(ref, [[torch.ones(4, 3)], [torch.ones(4, 3)]]) == (True, 0.0, True)
    nan = torch.ones(4, 3)
    nan[2, 1] = float("nan")
    assert compare_runs(ref, [[nan]])[0] is False and compare_runs(ref, [[nan]])[1] == float("inf")
    finite, rel, same = compare_runs(ref, [[torch.ones(4, 3)], [torch.ones(4, 3) * 1.01]])
    assert finite and rel == pytest.approx(0.01, rel=1e-4) and not same  # |0.01 * 1| / |1| in L2
    row = OpResult("conv", "2x3", finite=True, max_rel_diff=0.9, deterministic=False)
    assert not row.ok and describe(row) == "conv 2x3: 0.9 off float32, differs between repeats"


def _faulty_under_autocast(fault):
    """F.conv2d that misbehaves only inside CPU bf16 autocast, as the AMX kernels do."""
    real = F.conv2d

    def conv2d(x, *args, **kwargs):
        out = real(x, *args, **kwargs)
        return fault(out) if torch.is_autocast_enabled("cpu") else out

    return conv2d


@pytest.mark.parametrize(
    "fault, words",
    [
        (lambda out: out * float("nan"), "not finite"),
        (lambda out: out + 1e-2 * torch.randn_like(out), "differs between repeats"),
        (lambda out: out * 3.0, "off float32"),
    ],
)
def test_self_check_finds_injected_bf16_faults(monkeypatch, fault, words):
    monkeypatch.setattr(F, "conv2d", _faulty_under_autocast(fault))
    problem = cpu_bf16.find_problem()
    assert problem is not None and problem.startswith("conv") and words in problem


def test_failing_self_check_makes_the_extractor_use_float32(checkpoint, failing_self_check):
    crops = [np.random.default_rng(i).integers(0, 256, (40, 20, 3), dtype=np.uint8) for i in range(3)]
    with pytest.warns(Bf16FallbackWarning) as record:
        extractor = FeatureExtractor(checkpoint, device="cpu", half=True)
    message = str(record[0].message)
    assert "\n" not in message and FAILED in message and "ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16" in message
    assert not extractor.cpu_autocast
    np.testing.assert_array_equal(extractor(crops), FeatureExtractor(checkpoint, device="cpu", backend="torch")(crops))


def test_a_nan_bf16_batch_is_recomputed_in_float32(checkpoint, passing_self_check, monkeypatch):
    import reid.inference.extractor as module

    crops = [np.random.default_rng(i).integers(0, 256, (40, 20, 3), dtype=np.uint8) for i in range(3)]
    exact = FeatureExtractor(checkpoint, device="cpu", backend="torch")(crops)
    extractor = FeatureExtractor(checkpoint, device="cpu", half=True)
    assert extractor.cpu_autocast
    real = module.embed_batch
    monkeypatch.setattr(module, "embed_batch", lambda m, x, o: real(m, x, o) * (
        float("nan") if torch.is_autocast_enabled("cpu") else 1.0))  # fmt: skip
    with pytest.warns(Bf16FallbackWarning, match="non-finite; recomputed in float32"):
        got = extractor(crops)
    np.testing.assert_array_equal(got, exact)


def _trainer(tiny_root, tmp_path, *extra):
    from reid.engine.trainer import Trainer

    overrides = tiny_config_overrides(tiny_root, tmp_path) + ["train.eval_before=false", "train.plots=false", *extra]
    return Trainer.from_config(load_config("configs/demo.yaml", overrides), tmp_path / "run", progress=False)


def test_failing_self_check_trains_in_float32_with_one_warning_line(tiny_root, tmp_path, failing_self_check, capsys):
    trainer = _trainer(tiny_root, tmp_path, "train.amp=bf16")
    assert trainer.amp_dtype is None
    log = (tmp_path / "run" / "train.log").read_text()
    lines = [line for line in log.splitlines() if "CPU bfloat16 failed its self-check" in line]
    assert len(lines) == 1 and FAILED in lines[0] and "ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16" in lines[0]
    assert "using float32 instead" in capsys.readouterr().out
    assert _trainer(tiny_root, tmp_path / "b", "train.amp=none").amp_dtype is None  # no check, no warning


def test_a_nan_bf16_step_is_recomputed_in_float32(tiny_root, tmp_path, passing_self_check):
    trainer = _trainer(tiny_root, tmp_path, "train.amp=bf16", "train.epochs=1")
    assert trainer.amp_dtype == torch.bfloat16
    net = trainer.net

    class NanUnderAutocast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = net

        def forward(self, x):
            out = self.inner(x)
            if torch.is_autocast_enabled("cpu"):
                out = {**out, "features": out["features"] * float("nan")}
            return out

    trainer.net = NanUnderAutocast()
    history = trainer.fit()
    assert trainer.amp_dtype is None and trainer.global_step == 5
    log = (tmp_path / "run" / "train.log").read_text()
    assert "step 1: CPU bfloat16 gave a non-finite loss or gradient" in log and "ONEDNN_MAX_CPU_ISA" in log
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert np.isfinite(history["final"]["mAP"])


@pytest.mark.slow
def test_real_bf16_training_is_finite_whatever_the_cpu(tiny_root, tmp_path):
    """No injection: on a CPU that passes the self-check this trains in bf16, on an affected AMX CPU
    it falls back (with the warning); either way every loss and weight is finite."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Bf16FallbackWarning)
        trainer = _trainer(tiny_root, tmp_path, "train.amp=bf16", "train.epochs=1")
    fell_back = cpu_bf16.cpu_bf16_problem() is not None
    assert (trainer.amp_dtype is None) == fell_back
    trainer.fit()
    log = (tmp_path / "run" / "train.log").read_text()
    assert ("CPU bfloat16 failed its self-check" in log) == fell_back
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
