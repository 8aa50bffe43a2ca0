"""OpenCV-based train and test transforms: BGR uint8 in, normalised RGB tensor out.

Random choices use torch's RNG, so a seeded DataLoader reproduces them exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """The model's test-time input contract, stored in every checkpoint."""

    height: int = 256
    width: int = 128
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color: str = "rgb"  # channel order the network expects

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Preprocess:
        return cls(
            height=int(values["height"]),
            width=int(values["width"]),
            mean=tuple(values["mean"]),
            std=tuple(values["std"]),
            color=values.get("color", "rgb"),
        )


def to_tensor(image_bgr: np.ndarray, pre: Preprocess) -> torch.Tensor:
    """Resize a BGR uint8 (H, W, 3) image and return a normalised float (3, h, w) tensor."""
    if image_bgr.shape[:2] != (pre.height, pre.width):
        image_bgr = cv2.resize(image_bgr, (pre.width, pre.height), interpolation=cv2.INTER_LINEAR)
    image = image_bgr[:, :, ::-1] if pre.color == "rgb" else image_bgr
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)
    mean = torch.tensor(pre.mean).view(3, 1, 1)
    std = torch.tensor(pre.std).view(3, 1, 1)
    return tensor.sub_(mean).div_(std)


class EvalTransform:
    """Resize and normalise: the whole test-time preprocessing."""

    def __init__(self, pre: Preprocess) -> None:
        self.pre = pre

    def __call__(self, image_bgr: np.ndarray) -> torch.Tensor:
        return to_tensor(image_bgr, self.pre)


class TrainTransform:
    """Resize, random horizontal flip, zero-pad + random crop, normalise, random erasing."""

    def __init__(self, pre: Preprocess, flip: bool = True, pad: int = 10, erasing: float = 0.5) -> None:
        self.pre, self.flip, self.pad, self.erasing = pre, flip, pad, erasing

    def __call__(self, image_bgr: np.ndarray) -> torch.Tensor:
        pre = self.pre
        image = cv2.resize(image_bgr, (pre.width, pre.height), interpolation=cv2.INTER_LINEAR)
        if self.flip and torch.rand(()) < 0.5:
            image = image[:, ::-1]
        if self.pad > 0:
            padded = cv2.copyMakeBorder(np.ascontiguousarray(image), *(self.pad,) * 4, cv2.BORDER_CONSTANT, value=0)
            y = int(torch.randint(0, 2 * self.pad + 1, ()))
            x = int(torch.randint(0, 2 * self.pad + 1, ()))
            image = padded[y : y + pre.height, x : x + pre.width]
        tensor = to_tensor(np.ascontiguousarray(image), pre)
        if self.erasing > 0 and torch.rand(()) < self.erasing:
            random_erase(tensor)
        return tensor


def random_erase(
    tensor: torch.Tensor, area: tuple[float, float] = (0.02, 0.4), ratio: float = 0.3, attempts: int = 100
) -> None:
    """Random erasing (Zhong et al. 2020), in place, filling with the normalised mean (0)."""
    _, h, w = tensor.shape
    for _ in range(attempts):
        target = float(torch.empty(()).uniform_(*area)) * h * w
        aspect = float(torch.empty(()).uniform_(ratio, 1 / ratio))
        eh, ew = int(round((target * aspect) ** 0.5)), int(round((target / aspect) ** 0.5))
        if 0 < eh < h and 0 < ew < w:
            y = int(torch.randint(0, h - eh + 1, ()))
            x = int(torch.randint(0, w - ew + 1, ()))
            tensor[:, y : y + eh, x : x + ew] = 0.0
            return
