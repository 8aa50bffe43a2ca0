"""FeatureExtractor: colour order, paths vs arrays, any size, empty input, frames and boxes,
and agreement with the batch `extract_features` path used by `reid test`."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from reid.config import Config
from reid.data.datasets.base import Record
from reid.data.transforms import Preprocess
from reid.errors import DataError
from reid.inference.extractor import FeatureExtractor, clip_boxes, crop_boxes
from reid.inference.features import TestTimeOptions, extract_features
from reid.io.run_folder import save_checkpoint
from reid.models.loading import load_model
from reid.models.reid_model import build_model

HEIGHT, WIDTH = 64, 32


def make_checkpoint(path: Path, seed: int = 0, backbone: str = "timm:resnet10t") -> Path:
    """A random-init model saved as a reid checkpoint (what `reid train` writes, minus training)."""
    torch.manual_seed(seed)
    config = Config()
    config.model.backbone, config.model.pretrained = backbone, False
    config.data.height, config.data.width = HEIGHT, WIDTH
    model = build_model(config.model, num_classes=4)
    with torch.no_grad():  # non-trivial BN statistics, so the eval-mode network is not near-constant
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    state = {
        "model": model.state_dict(),
        "config": config.to_dict(),
        "num_classes": 4,
        "preprocess": Preprocess(height=HEIGHT, width=WIDTH).to_dict(),
        "epoch": 0,
        "metrics": {},
    }
    save_checkpoint(state, path)
    return path


def random_images(n: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random BGR images of varying sizes (blurred so resizing is well-conditioned)."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        h, w = int(rng.integers(20, 160)), int(rng.integers(10, 80))
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        images.append(cv2.GaussianBlur(image, (0, 0), 1.5))
    return images


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt")


@pytest.fixture(scope="module")
def extractor(checkpoint) -> FeatureExtractor:
    return FeatureExtractor(checkpoint, device="cpu", batch_size=4)


def test_features_are_float32_l2_normalised_for_any_size(extractor):
    images = random_images(7) + [np.full((HEIGHT, WIDTH, 3), 90, np.uint8), np.zeros((1, 1, 3), np.uint8)]
    feats = extractor(images)
    assert feats.shape == (9, extractor.feature_dim) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)


def test_bgr_and_rgb_inputs_give_the_same_features(extractor):
    images = random_images(5, seed=1)
    bgr = extractor(images)
    rgb = extractor([im[:, :, ::-1] for im in images], color="rgb")
    np.testing.assert_allclose(rgb, bgr, atol=1e-6)
    swapped = extractor([im[:, :, ::-1] for im in images])  # RGB data passed as BGR: a different input
    assert np.abs(swapped - bgr).max() > 1e-3


def test_file_paths_and_arrays_give_the_same_features(extractor, tmp_path):
    images = random_images(5, seed=2)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[i]), image)
    np.testing.assert_allclose(extractor(paths), extractor(images), atol=1e-6)
    np.testing.assert_allclose(extractor([str(p) for p in paths[:2]] + images[2:]), extractor(images), atol=1e-6)


def test_grayscale_and_alpha_inputs_are_converted(extractor):
    gray = random_images(1, seed=3)[0][:, :, 0]
    np.testing.assert_allclose(extractor([gray]), extractor([np.dstack([gray] * 3)]), atol=1e-6)
    image = random_images(1, seed=4)[0]
    alpha = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    np.testing.assert_allclose(extractor([alpha]), extractor([image]), atol=1e-6)


def test_matches_the_extract_features_path_of_reid_test(checkpoint, extractor, tmp_path):
    images = random_images(6, seed=5)
    records = []
    for i, image in enumerate(images):
        cv2.imwrite(str(tmp_path / f"{i}.png"), image)
        records.append(Record(str(tmp_path / f"{i}.png"), i, 0))
    model, pre, _, _ = load_model(checkpoint, "cpu")
    reference = extract_features(model, records, pre, "cpu", batch_size=4, progress=False)
    np.testing.assert_allclose(extractor(images), reference, atol=1e-5)
    flip = TestTimeOptions(flip=True)
    reference = extract_features(model, records, pre, "cpu", batch_size=4, options=flip, progress=False)
    flipped = FeatureExtractor.from_model(model, pre, device="cpu", batch_size=3, options=flip)
    np.testing.assert_allclose(flipped(images), reference, atol=1e-5)


def test_batch_size_does_not_change_the_features(checkpoint, extractor):
    images = random_images(9, seed=6)
    one_batch = FeatureExtractor(checkpoint, device="cpu", batch_size=32, channels_last=False)
    np.testing.assert_allclose(extractor(images), one_batch(images), atol=1e-5)


def test_empty_input_gives_zero_rows(extractor):
    assert extractor([]).shape == (0, extractor.feature_dim)
    frame = random_images(1)[0]
    assert extractor.from_frame(frame, np.zeros((0, 4))).shape == (0, extractor.feature_dim)


def test_clip_boxes_by_hand():
    boxes = np.array([[-5.0, 2.4, 10.6, 30.0], [40.0, 10.0, 60.0, 20.0], [5.0, 5.0, 5.0, 5.0], [3, -20, 8, -2]])
    expected = [[0, 2, 11, 30], [39, 10, 40, 20], [5, 5, 6, 6], [3, 0, 8, 1]]  # frame 30 x 40 (h x w)
    np.testing.assert_array_equal(clip_boxes(boxes, 30, 40), expected)
    with pytest.raises(DataError, match="box 1: coordinates must be finite"):
        clip_boxes(np.array([[0, 0, 1, 1], [0, np.nan, 2, 2]]), 30, 40)


def test_from_frame_crops_clipped_boxes(extractor):
    frame = cv2.resize(random_images(1, seed=7)[0], (200, 120))
    boxes = np.array([[10, 5, 50, 100], [-30, -10, 25, 60], [180, 90, 260, 200], [300, 300, 350, 400]], np.float32)
    feats = extractor.from_frame(frame, boxes)
    crops = [frame[5:100, 10:50], frame[0:60, 0:25], frame[90:120, 180:200], frame[119:120, 199:200]]
    np.testing.assert_allclose(feats, extractor(crops), atol=1e-6)
    assert [c.shape[:2] for c in crop_boxes(frame, boxes)] == [c.shape[:2] for c in crops]
    rgb = extractor.from_frame(np.ascontiguousarray(frame[:, :, ::-1]), boxes, color="rgb")
    np.testing.assert_allclose(rgb, feats, atol=1e-6)


def test_bad_inputs_are_one_line_errors(extractor):
    with pytest.raises(DataError, match=r"image 1: expected a uint8 \(H, W, 3\) array, got float32"):
        extractor([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(DataError, match="image 0: empty image"):
        extractor([np.zeros((0, 8, 3), np.uint8)])
    with pytest.raises(DataError, match="nope.jpg: image file not found"):
        extractor(["nope.jpg"])
    with pytest.raises(ValueError, match="color"):
        extractor([np.zeros((8, 8, 3), np.uint8)], color="hsv")


def test_half_on_the_cpu_is_bfloat16_autocast_close_to_float32(checkpoint):
    """On a CPU whose bf16 passes the self-check: bf16 autocast; on one that fails it (some AMX
    CPUs): float32 with a Bf16FallbackWarning. Finite, unit-norm, close to float32 either way."""
    from reid.models.cpu_bf16 import Bf16FallbackWarning, cpu_bf16_problem

    crops = [np.random.default_rng(i).integers(0, 256, (60 + 7 * i, 30 + 3 * i, 3), dtype=np.uint8) for i in range(5)]
    exact = FeatureExtractor(checkpoint, device="cpu")(crops)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", Bf16FallbackWarning)
        extractor = FeatureExtractor(checkpoint, device="cpu", half=True)
        fast = extractor(crops)
    fell_back = cpu_bf16_problem() is not None
    assert extractor.dtype == torch.float32 and extractor.cpu_autocast != fell_back
    assert any(issubclass(w.category, Bf16FallbackWarning) for w in seen) == fell_back
    assert fast.dtype == np.float32 and np.isfinite(fast).all()
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, rtol=1e-5)
    assert (fast * exact).sum(1).min() > 0.999  # same direction, bf16 rounding only
    assert (np.abs(fast - exact).max() > 0) != fell_back  # it did run in reduced precision, unless it fell back


def test_import_reid_stays_light_and_exports_the_extractor():
    code = "import sys, reid; assert 'torch' not in sys.modules; from reid import FeatureExtractor; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "ok", out.stderr


def test_onnxruntime_backend_matches_torch_within_1e3_cosine(checkpoint):
    pytest.importorskip("onnxruntime")
    images = random_images(6, seed=3)
    options = TestTimeOptions(flip=True)
    ref = FeatureExtractor(checkpoint, device="cpu", batch_size=4, options=options)(images)
    ort_ex = FeatureExtractor(checkpoint, device="cpu", batch_size=4, options=options, backend="onnxruntime")
    got = ort_ex(images)
    assert got.shape == ref.shape and got.dtype == np.float32 and "backend=onnxruntime" in repr(ort_ex)
    cosine = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    assert cosine.min() > 1 - 1e-3
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_unknown_or_unsupported_backend_is_a_clear_error(checkpoint):
    with pytest.raises(ValueError, match="backend must be one of"):
        FeatureExtractor(checkpoint, device="cpu", backend="tensorrt")
    pytest.importorskip("onnxruntime")
    with pytest.raises(ValueError, match="pool_lambda"):
        FeatureExtractor(checkpoint, device="cpu", backend="onnxruntime", options=TestTimeOptions(pool_lambda=0.5))


def test_cli_extract_backend_onnxruntime_writes_the_torch_features(checkpoint, tmp_path):
    pytest.importorskip("onnxruntime")
    from click.testing import CliRunner

    from reid.cli import cli
    from reid.io.features import read_features

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, image in enumerate(random_images(3, seed=4)):
        cv2.imwrite(str(folder / f"{i:04d}_c1s1_000001_00.jpg"), image)
    outs = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / f"{backend}.h5"
        args = ["extract", "-m", str(checkpoint), "--images", str(folder), "--out", str(out), "--device", "cpu",
                "--quiet", "--backend", backend]  # fmt: skip
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        outs[backend] = read_features(out)
    assert outs["onnxruntime"].attrs["backend"] == "onnxruntime"
    cosine = (outs["torch"].features * outs["onnxruntime"].features).sum(1)
    assert cosine.min() > 1 - 1e-3
