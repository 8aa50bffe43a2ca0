"""`FeatureExtractor`: embed person crops or detections in a frame, for trackers and scripts.

    extractor = FeatureExtractor("runs/market/checkpoints/best.pt")
    feats = extractor([crop1, crop2])                   # BGR uint8 arrays of any size -> (2, D)
    feats = extractor.from_frame(frame, boxes_xyxy)     # crop the boxes of an OpenCV frame -> (N, D)

The preprocessing is the checkpoint's own `Preprocess` (size, mean/std, channel order),
so a caller cannot feed the network differently from how it was trained and tested.
Each image is resized by OpenCV straight into a preallocated uint8 batch (N, H, W, 3);
the batch becomes a channels-last float tensor normalised in one fused multiply-add.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from reid.data.boxes import as_xyxy, boxes_from_tlwh, clip_boxes, crop_boxes
from reid.data.image_io import read_image, to_bgr
from reid.data.transforms import Preprocess
from reid.errors import DataError
from reid.models.cpu_bf16 import SAFE_ISA_HINT, Bf16FallbackWarning, cpu_bf16_allowed
from reid.test_time import DEFAULTS, TestConfig

from .extractor_backends import BACKENDS, build_runner, fold_batchnorm, resolve_backend
from .features import embed_batch

ImageLike = np.ndarray | str | Path
COLORS = ("bgr", "rgb")


def _as_bgr(image: ImageLike, color: str, index: int) -> np.ndarray:
    """One input (path or uint8 array in `color` order) as a BGR uint8 (H, W, 3) array."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    if image is None:
        raise DataError(f"image {index}: got None (cv2.imread returns None for a missing or unreadable file)")
    if not isinstance(image, np.ndarray):
        raise DataError(f"image {index}: expected a uint8 array or a file path, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise DataError(f"image {index}: expected a uint8 (H, W, 3) array, got {image.dtype} {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise DataError(f"image {index}: empty image {image.shape}")
    if image.ndim == 3 and image.shape[2] == 3 and color == "bgr":
        return image
    if color == "rgb" and image.ndim == 3 and image.shape[2] in (3, 4):
        image = image[:, :, [2, 1, 0] + ([3] if image.shape[2] == 4 else [])]
    return to_bgr(np.ascontiguousarray(image))


def resize_into(images: Sequence[np.ndarray], pre: Preprocess, out: np.ndarray) -> np.ndarray:
    """Resize BGR uint8 images into `out[:n]` (n, H, W, 3) uint8, in the model's channel order.

    Bilinear (cv2.INTER_LINEAR), as `reid.data.transforms.to_tensor`; returns `out[:n]`.
    """
    n = len(images)
    for i, image in enumerate(images):
        if image.shape[:2] == (pre.height, pre.width):
            out[i] = image
        else:
            if image.strides[1] != 3 or image.strides[2] != 1:  # OpenCV needs contiguous pixels
                image = np.ascontiguousarray(image)
            cv2.resize(image, (pre.width, pre.height), dst=out[i], interpolation=cv2.INTER_LINEAR)
    if pre.color == "rgb":
        out[:n] = out[:n, :, :, ::-1]
    return out[:n]


class FeatureExtractor:
    """Embed images with a trained re-ID model: float32 (N, D) L2-normalised features.

    checkpoint: a checkpoint file or run folder (`reid train` output).
    device: "cpu", "cuda", "cuda:1"... (default: CUDA when available, else CPU).
    batch_size: images per forward pass. half: fp16 weights and inputs on CUDA; on the CPU,
    bfloat16 autocast with float32 weights (about 2x faster for a ResNet-50 on a CPU with bf16
    support; normalised features within ~1e-3 of float32) after a once-per-process self-check
    of bf16 on this CPU: if it fails (a oneDNN fault on some AMX CPUs), float32 is used with a
    `Bf16FallbackWarning`, and a bf16 batch that comes out non-finite is recomputed in float32.
    options: test-time switches (flip, ...), as `reid test`.
    backend: who runs the network. "auto" (default): on the CPU in float32, onnxruntime if installed,
    else OpenVINO, else torch (the fastest faithful one measured, docs/extraction.md); torch otherwise.
    "torch" (BN folded into the convolutions on the CPU), "onnxruntime" or "openvino": the
    same network (flip / scales / beta) exported to ONNX in memory and run float32 on the CPU.
    Pooling / activation overrides and half need torch.
    quantize: None, or "int8": onnxruntime dynamic int8 quantisation (faster, not faithful to 1e-3).
    """

    def __init__(
        self,
        checkpoint: str | Path,
        device: str | torch.device | None = None,
        batch_size: int = 32,
        half: bool = False,
        options: TestConfig = DEFAULTS,
        channels_last: bool = True,
        backend: str = "auto",
        quantize: str | None = None,
    ) -> None:
        from reid.models.loading import load_model

        if not isinstance(checkpoint, (str, Path)):
            raise DataError(f"checkpoint: expected a file or run folder path, got {type(checkpoint).__name__}")
        model, pre, _, _ = load_model(checkpoint, "cpu")
        self._setup(model, pre, device, batch_size, half, options, channels_last, backend, quantize)

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        pre: Preprocess,
        device: str | torch.device | None = None,
        batch_size: int = 32,
        half: bool = False,
        options: TestConfig = DEFAULTS,
        channels_last: bool = True,
        backend: str = "auto",
        quantize: str | None = None,
    ) -> FeatureExtractor:
        """An extractor around a model already in memory (eval-mode forward -> (B, D))."""
        self = cls.__new__(cls)
        self._setup(model, pre, device, batch_size, half, options, channels_last, backend, quantize)
        return self

    def _setup(self, model, pre, device, batch_size, half, options, channels_last, backend, quantize) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.device = torch.device(device) if device is not None else _default_device()
        self.backend = resolve_backend(backend, self.device, bool(half), options, quantize)
        self.quantize, self._runner = quantize, None
        self.pre, self.batch_size, self.half, self.options = pre, int(batch_size), bool(half), options
        on_cuda = self.device.type == "cuda"
        self.dtype = torch.float16 if half and on_cuda else torch.float32
        # bf16 matmuls/convolutions with fp32 weights, if this CPU passes the self-check
        self.cpu_autocast = bool(half) and not on_cuda and cpu_bf16_allowed("FeatureExtractor(half=True)")
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = model.eval()
        if self.backend == "torch" and self.device.type == "cpu" and options.leaky_slope is None:
            model = fold_batchnorm(model, pre)  # a copy: the caller's model keeps its BN layers
        self.model = model.to(self.device, dtype=self.dtype, memory_format=self.memory_format)
        std = torch.tensor(pre.std, dtype=torch.float32)
        # (x / 255 - mean) / std == x * scale + shift, per channel
        self._scale = (1.0 / (255.0 * std)).view(1, 3, 1, 1).to(self.device)
        self._shift = (-torch.tensor(pre.mean) / std).view(1, 3, 1, 1).to(self.device)
        self._buffer = np.empty((self.batch_size, pre.height, pre.width, 3), np.uint8)
        if self.backend != "torch":
            self._runner = build_runner(self.backend, self.model, pre, options, quantize)
        self.feature_dim = int(getattr(model, "feature_dim", 0)) or self._probe_dim()

    def _probe_dim(self) -> int:
        return int(self._embed(np.zeros((1, self.pre.height, self.pre.width, 3), np.uint8)).shape[1])

    @torch.inference_mode()
    def _embed(self, batch_hwc: np.ndarray) -> torch.Tensor:
        """uint8 (n, H, W, 3) in model channel order -> float32 (n, D) on the CPU."""
        x = torch.from_numpy(batch_hwc).to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        x = x.float().mul_(self._scale).add_(self._shift)  # NHWC storage: already channels-last
        x = x.to(dtype=self.dtype, memory_format=self.memory_format)
        if self._runner is not None:
            return self._runner(x)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_autocast):
            out = embed_batch(self.model, x, self.options).float().cpu()
        if self.cpu_autocast and not bool(torch.isfinite(out).all()):
            warnings.warn(
                f"FeatureExtractor(half=True): a CPU bfloat16 batch of {len(out)} came out non-finite; recomputed in "
                f"float32 (a known oneDNN fault on AMX CPUs: {SAFE_ISA_HINT})", Bf16FallbackWarning, stacklevel=3,
            )  # fmt: skip
            out = embed_batch(self.model, x, self.options).float().cpu()
        return out

    def __call__(self, images: Sequence[ImageLike], color: str = "bgr") -> np.ndarray:
        """Features (N, D) float32, L2-normalised, of uint8 arrays (any size) or image files.

        Arrays are BGR unless `color="rgb"`; grayscale (H, W) and 4-channel arrays are accepted.
        Files are decoded with OpenCV. An empty list gives a (0, D) array.
        """
        if color not in COLORS:
            raise ValueError(f"color must be 'bgr' or 'rgb', got {color!r}")
        if isinstance(images, (np.ndarray, str, Path)) and not (isinstance(images, np.ndarray) and images.ndim == 4):
            images = [images]  # one image
        out = np.empty((len(images), self.feature_dim), np.float32)
        for start in range(0, len(images), self.batch_size):
            chunk = [_as_bgr(im, color, start + i) for i, im in enumerate(images[start : start + self.batch_size])]
            batch = resize_into(chunk, self.pre, self._buffer)
            out[start : start + len(chunk)] = self._embed(batch).numpy()
        return out

    def from_frame(
        self, frame: np.ndarray, boxes: np.ndarray, color: str = "bgr", box_format: str = "xyxy"
    ) -> np.ndarray:
        """Features (N, D) of the boxes (N, 4) in one frame (H, W, 3).

        box_format: "xyxy" (x0, y0, x1, y1 pixels, the default) or "tlwh" (x, y, w, h as in
        MOT files); an inverted xyxy box is a DataError. Boxes are clipped to the frame; a box
        left empty by clipping uses the nearest 1x1 pixel (see `clip_boxes`). No boxes: (0, D).
        """
        if frame is None:
            raise DataError("frame: got None (cv2.imread returns None for a missing or unreadable file)")
        return self(crop_boxes(frame, as_xyxy(boxes, box_format)), color=color)

    def __repr__(self) -> str:
        pre = self.pre
        return (
            f"FeatureExtractor({pre.height}x{pre.width} {pre.color}, dim={self.feature_dim}, device={self.device}, "
            f"batch_size={self.batch_size}, half={self.half}, options={self.options.describe()}"
            + f", backend={self.backend}"
            + (f", quantize={self.quantize})" if self.quantize else ")")
        )


def _default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


__all__ = ["BACKENDS", "FeatureExtractor", "as_xyxy", "boxes_from_tlwh", "clip_boxes", "crop_boxes", "resize_into"]
