"""FeatureExtractor backends: each matches float32 PyTorch, auto picks a faithful one, missing packages are one line."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from reid.cli import cli
from reid.data.transforms import Preprocess
from reid.inference.extractor import FeatureExtractor
from reid.inference.extractor_backends import AUTO_ORDER, fold_batchnorm, installed, resolve_backend
from reid.inference.features import TestTimeOptions
from reid.test_time import DEFAULTS

from .test_extractor import make_checkpoint, random_images

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("backends") / "model.pt", seed=5)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def reference(checkpoint) -> tuple[list[np.ndarray], np.ndarray]:
    """Images and their float32 PyTorch features with flip (BN not folded: the model as trained)."""
    from reid.models.loading import load_model

    images = random_images(7, seed=11)
    extractor = FeatureExtractor(
        checkpoint, device="cpu", batch_size=4, backend="torch", options=TestTimeOptions(flip=True)
    )
    extractor.model = load_model(checkpoint, "cpu")[0].eval()  # BN not folded
    return images, extractor(images)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino", "auto"])
def test_each_backend_matches_float32_pytorch_within_1e3_cosine(checkpoint, reference, backend):
    if backend not in ("torch", "auto"):
        pytest.importorskip(backend)
    images, ref = reference
    extractor = FeatureExtractor(
        checkpoint, device="cpu", batch_size=4, backend=backend, options=TestTimeOptions(flip=True)
    )
    got = extractor(images)
    assert got.shape == ref.shape and got.dtype == np.float32
    assert cosine(got, ref).min() > 1 - 1e-5  # float32 everywhere: rounding only, far inside the 1e-3 goal
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert f"backend={extractor.backend}" in repr(extractor) and extractor.backend != "auto"


def test_int8_is_close_but_flagged(checkpoint, reference):
    pytest.importorskip("onnxruntime")
    images, ref = reference
    extractor = FeatureExtractor(
        checkpoint, device="cpu", batch_size=4, quantize="int8", options=TestTimeOptions(flip=True)
    )
    got = extractor(images)
    assert extractor.backend == "onnxruntime" and "quantize=int8" in repr(extractor)
    assert 0.98 < cosine(got, ref).min() < 1 - 1e-6  # quantised: near, never bit-faithful


def test_auto_picks_float32_cpu_backends_and_torch_for_everything_else():
    fastest = next((b for b in AUTO_ORDER if installed(b)), "torch")
    assert resolve_backend("auto", CPU, False, DEFAULTS, None) == fastest
    assert resolve_backend("auto", torch.device("cuda"), False, DEFAULTS, None) == "torch"
    assert resolve_backend("auto", CPU, True, DEFAULTS, None) == "torch"  # bf16 autocast is a torch feature
    assert resolve_backend("auto", CPU, False, TestTimeOptions(pool_lambda=0.5), None) == "torch"
    assert resolve_backend("auto", CPU, False, TestTimeOptions(leaky_slope=0.1), None) == "torch"
    assert resolve_backend("auto", CPU, False, DEFAULTS, "int8") == "onnxruntime"


def test_backend_errors_are_one_line(monkeypatch):
    with pytest.raises(ValueError, match="backend must be one of auto, torch, onnxruntime, openvino"):
        resolve_backend("tensorrt", CPU, False, DEFAULTS, None)
    with pytest.raises(ValueError, match="quantize must be None or 'int8'"):
        resolve_backend("auto", CPU, False, DEFAULTS, "int4")
    with pytest.raises(ValueError, match="runs on onnxruntime"):
        resolve_backend("torch", CPU, False, DEFAULTS, "int8")
    with pytest.raises(ValueError, match="float32 on the CPU"):
        resolve_backend("onnxruntime", torch.device("cuda"), False, DEFAULTS, None)
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(ValueError, match=r"needs the openvino package \(pip install 'reid\[openvino\]'\)") as info:
        resolve_backend("openvino", CPU, False, DEFAULTS, None)
    assert "\n" not in str(info.value)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert resolve_backend("auto", CPU, False, DEFAULTS, None) == "torch"  # nothing installed: falls back quietly


def test_cli_extract_with_a_missing_backend_package_is_one_line(checkpoint, tmp_path, monkeypatch):
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "0001_c1s1_000001_00.jpg"), random_images(1, seed=2)[0])
    monkeypatch.setitem(sys.modules, "openvino", None)
    args = ["extract", "-m", str(checkpoint), "--images", str(folder), "--out", str(tmp_path / "f.h5"),
            "--device", "cpu", "--quiet", "--backend", "openvino"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "Error: --backend openvino: backend='openvino' needs the openvino package (pip install 'reid[openvino]')"
    ]


class _Net(nn.Module):
    def __init__(self, bn_first: bool) -> None:
        super().__init__()
        self.conv, self.bn, self.bn_first = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), bn_first
        with torch.no_grad():
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)
            self.bn.weight.uniform_(0.5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(self.bn(x)) if self.bn_first else self.bn(self.conv(x))
        return y.mean((2, 3))


def test_fold_batchnorm_keeps_the_function_and_the_callers_model():
    torch.manual_seed(0)
    net = _Net(bn_first=False).eval()
    folded = fold_batchnorm(net, Preprocess(16, 8))
    assert folded is not net and isinstance(folded.bn, nn.Identity) and isinstance(net.bn, nn.BatchNorm2d)
    x = torch.randn(4, 3, 16, 8)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), atol=1e-5, rtol=1e-5)


def test_fold_batchnorm_refuses_a_pair_that_is_not_conv_then_bn():
    torch.manual_seed(0)
    net = _Net(bn_first=True).eval()  # registered conv, bn but applied bn, conv: folding would change it
    assert fold_batchnorm(net, Preprocess(16, 8)) is net


def _normalised(images: list[np.ndarray], pre: Preprocess) -> np.ndarray:
    """What an exported graph takes by default: the extractor's OpenCV batch, normalised, NCHW."""
    from reid.inference.extractor import resize_into

    batch = resize_into(images, pre, np.empty((len(images), pre.height, pre.width, 3), np.uint8)).astype(np.float32)
    return np.ascontiguousarray(
        ((batch / 255 - np.array(pre.mean)) / np.array(pre.std)).transpose(0, 3, 1, 2), np.float32
    )


def test_export_openvino_writes_ir_with_metadata_that_matches_pytorch(checkpoint, tmp_path):
    ov = pytest.importorskip("openvino")
    out = tmp_path / "model.xml"
    result = CliRunner().invoke(cli, ["export", "-m", str(checkpoint), "--format", "openvino", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "max |openvino - pytorch|" in result.output and out.with_suffix(".bin").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "model.xml"]  # no temporary files left
    model = ov.Core().read_model(str(out))
    assert model.get_rt_info(["reid", "input_height"]).astype(str) == "64"
    images = random_images(3, seed=8)
    extractor = FeatureExtractor(checkpoint, device="cpu", backend="torch")
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = np.asarray(compiled({0: _normalised(images, extractor.pre)})[compiled.output(0)])
    assert cosine(got, extractor(images)).min() > 1 - 1e-5


def test_export_onnx_int8_records_it_and_stays_close(checkpoint, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from reid.io.export import read_onnx_metadata

    out = tmp_path / "model.onnx"
    result = CliRunner().invoke(cli, ["export", "-m", str(checkpoint), "--format", "onnx", "--int8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert read_onnx_metadata(out)["quantize"] == "int8" and read_onnx_metadata(out)["input_height"] == 64
    images = random_images(4, seed=9)
    extractor = FeatureExtractor(checkpoint, device="cpu", backend="torch")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"images": _normalised(images, extractor.pre)})
    assert 0.98 < cosine(got, extractor(images)).min() < 1 - 1e-6


def test_export_int8_only_with_onnx_and_suffixes_checked(checkpoint, tmp_path):
    args = ["export", "-m", str(checkpoint), "--format", "openvino", "--int8", "--out", str(tmp_path / "m.xml")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "--int8 goes with --format onnx" in result.output
    result = CliRunner().invoke(
        cli, ["export", "-m", str(checkpoint), "--format", "openvino", "--out", str(tmp_path / "m.onnx")]
    )
    assert result.exit_code != 0 and "an openvino file ends in .xml" in result.output


def test_cli_extract_records_the_backend_that_ran_and_int8(checkpoint, tmp_path):
    pytest.importorskip("onnxruntime")
    from reid.io.features import read_features

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, image in enumerate(random_images(3, seed=6)):
        cv2.imwrite(str(folder / f"{i:04d}_c1s1_000001_00.jpg"), image)
    files = {}
    for name, extra in (("auto", []), ("int8", ["--int8"])):
        out = tmp_path / f"{name}.h5"
        args = [
            "extract",
            "-m",
            str(checkpoint),
            "--images",
            str(folder),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--quiet",
        ]
        result = CliRunner().invoke(cli, args + extra)
        assert result.exit_code == 0, result.output
        files[name] = read_features(out)
    assert files["auto"].attrs["backend"] in ("onnxruntime", "openvino") and files["auto"].attrs["quantize"] == "none"
    assert files["int8"].attrs["backend"] == "onnxruntime" and files["int8"].attrs["quantize"] == "int8"
    assert 0.98 < cosine(files["int8"].features, files["auto"].features).min() < 1 - 1e-6
