"""`reid export`: ONNX (run with onnxruntime) and TorchScript files agree with PyTorch and carry metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from reid.cli import cli
from reid.data.transforms import Preprocess
from reid.inference.extractor import FeatureExtractor, resize_into
from reid.inference.features import TestTimeOptions
from reid.io.export import load_torchscript, read_onnx_metadata

from .test_extractor import HEIGHT, WIDTH, make_checkpoint, random_images

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt")


def _export(checkpoint, out, *extra):
    result = CliRunner().invoke(cli, ["export", "-m", str(checkpoint), "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def _normalised(images: list[np.ndarray]) -> np.ndarray:
    """Independent preprocessing: resize, BGR->RGB, (x/255 - mean)/std, NCHW float32."""
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    batch = resize_into(images, Preprocess(HEIGHT, WIDTH), np.empty((8, HEIGHT, WIDTH, 3), np.uint8))
    return ((batch / 255.0 - mean) / std).transpose(0, 3, 1, 2).astype(np.float32)


def test_onnx_matches_pytorch_on_a_dynamic_batch(checkpoint, tmp_path):
    out = tmp_path / "model.onnx"
    output = _export(checkpoint, out, "--format", "onnx")
    assert "max |onnx - pytorch|" in output
    images = random_images(5, seed=21)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [3, HEIGHT, WIDTH]
    (onnx_feats,) = session.run(None, {"images": _normalised(images)})
    reference = FeatureExtractor(checkpoint, device="cpu")(images)
    assert onnx_feats.shape == (5, reference.shape[1])
    assert np.abs(onnx_feats - reference).max() < 1e-4
    meta = read_onnx_metadata(out)
    assert meta["input_height"] == HEIGHT and meta["input_width"] == WIDTH and meta["color_order"] == "rgb"
    assert meta["normalize_inside"] is False and meta["feature_dim"] == reference.shape[1]
    assert meta["mean"] == pytest.approx([0.485, 0.456, 0.406]) and meta["l2_normalized"] is True


def test_onnx_with_normalisation_and_flip_inside_takes_raw_rgb(checkpoint, tmp_path):
    out = tmp_path / "raw.onnx"
    _export(checkpoint, out, "--format", "onnx", "--normalize-inside", "--flip")
    images = random_images(3, seed=22)
    raw = resize_into(images, FeatureExtractor(checkpoint, device="cpu").pre, np.empty((3, HEIGHT, WIDTH, 3), np.uint8))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (feats,) = session.run(None, {"images": raw.transpose(0, 3, 1, 2).astype(np.float32)})
    reference = FeatureExtractor(checkpoint, device="cpu", options=TestTimeOptions(flip=True))(images)
    assert np.abs(feats - reference).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
    meta = read_onnx_metadata(out)
    assert meta["normalize_inside"] is True and meta["flip"] is True and meta["input_range"] == "0-255"


def test_torchscript_loads_and_matches_pytorch(checkpoint, tmp_path):
    out = tmp_path / "model.ts"
    output = _export(checkpoint, out, "--format", "torchscript", "--normalize-inside")
    assert float(output.split("max |torchscript - pytorch| over a batch of 3: ")[1].split()[0]) < 1e-4
    module, meta = load_torchscript(out)
    assert meta["normalize_inside"] is True and meta["input_height"] == HEIGHT
    images = random_images(4, seed=23)
    raw = resize_into(images, FeatureExtractor(checkpoint, device="cpu").pre, np.empty((4, HEIGHT, WIDTH, 3), np.uint8))
    with torch.no_grad():
        feats = module(torch.from_numpy(raw.transpose(0, 3, 1, 2).astype(np.float32))).numpy()
    assert np.abs(feats - FeatureExtractor(checkpoint, device="cpu")(images)).max() < 1e-4


def test_onnx_out_must_end_in_onnx(checkpoint, tmp_path):
    args = ["export", "-m", str(checkpoint), "--format", "onnx", "--out", str(tmp_path / "m")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "ends in .onnx" in result.output
