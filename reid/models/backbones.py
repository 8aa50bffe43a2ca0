"""Backbones that return a feature map (B, C, h, w): torchvision ResNets or any timm model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from reid.errors import ConfigError

from .pretrained import load_matching, read_state_dict

TORCHVISION_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


class ResNetTrunk(nn.Module):
    """A torchvision ResNet without its pooling and classifier; optional last stride 1."""

    def __init__(self, name: str, last_stride: int = 2, imagenet: bool = False) -> None:
        super().__init__()
        import torchvision

        weights = "DEFAULT" if imagenet else None
        net = getattr(torchvision.models, name)(weights=weights)
        if last_stride == 1:
            block = net.layer4[0]
            block.conv2.stride = (1, 1) if hasattr(block, "conv3") else block.conv2.stride
            if not hasattr(block, "conv3"):  # BasicBlock: the stride sits on conv1
                block.conv1.stride = (1, 1)
            if block.downsample is not None:
                block.downsample[0].stride = (1, 1)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_channels = net.fc.in_features

    def forward_until_last(self, x: torch.Tensor) -> torch.Tensor:
        """Everything before the last block (lets the head soften the final activation)."""
        return self.layer3(self.layer2(self.layer1(self.stem(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.forward_until_last(x))

    def forward_softened(self, x: torch.Tensor, slope: float) -> torch.Tensor:
        """The feature map with the last block's final ReLU replaced by a leaky one of `slope`.

        torchvision blocks reuse one `relu` module two or three times, so the last block is run
        by hand here (same weights, same ops) with only its final activation changed.
        """
        x = self.forward_until_last(x)
        for block in self.layer4[:-1]:
            x = block(x)
        return F.leaky_relu(_residual_preactivation(self.layer4[-1], x), slope)


def _residual_preactivation(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A torchvision BasicBlock/Bottleneck up to (and including) the residual add, before its ReLU."""
    identity = x if block.downsample is None else block.downsample(x)
    out = F.relu(block.bn1(block.conv1(x)))
    out = block.bn2(block.conv2(out))
    if hasattr(block, "conv3"):  # Bottleneck
        out = block.bn3(block.conv3(F.relu(out)))
    return out + identity


class TimmTrunk(nn.Module):
    """Any timm model by name, through its uniform `forward_features`."""

    def __init__(self, name: str, imagenet: bool = False) -> None:
        super().__init__()
        import timm

        try:
            self.net = timm.create_model(name, pretrained=imagenet, num_classes=0, global_pool="")
        except RuntimeError as exc:  # timm raises RuntimeError for unknown model names
            raise ConfigError(f"model.backbone: timm has no model {name!r} ({exc})") from None
        self.out_channels = self.net.num_features
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.net.forward_features(x)
        if features.ndim == 3:  # vision transformers: (B, tokens, C) -> (B, C, tokens, 1)
            features = features.transpose(1, 2).unsqueeze(-1)
        return features

    def forward_softened(self, x: torch.Tensor, slope: float) -> torch.Tensor:
        """The feature map with the last block's final ReLU made leaky (timm ResNet family only)."""
        with _leaky_final_activation(self.net, self.name, slope):
            return self.forward(x)


def _final_activation(net: nn.Module, model_name: str) -> tuple[nn.Module, str]:
    """(block, attribute) of the activation applied after the last residual add of a timm ResNet."""
    from timm.models.resnet import BasicBlock, Bottleneck

    last_stage = getattr(net, "layer4", None)
    block = last_stage[-1] if isinstance(last_stage, nn.Sequential) and len(last_stage) else None
    name = "act3" if isinstance(block, Bottleneck) else "act2" if isinstance(block, BasicBlock) else None
    if name is None or not isinstance(getattr(block, name), nn.ReLU):
        raise ConfigError(
            f"test.leaky_slope: the backbone timm:{model_name} "
            "has no final ReLU after a residual add (supported: torchvision ResNets and timm ResNet variants)"
        )
    return block, name


@contextmanager
def _leaky_final_activation(net: nn.Module, model_name: str, slope: float) -> Iterator[None]:
    """Temporarily swap the final ReLU module of a timm ResNet (used once per block) for LeakyReLU."""
    block, name = _final_activation(net, model_name)
    original = getattr(block, name)
    setattr(block, name, nn.LeakyReLU(slope))
    try:
        yield
    finally:
        setattr(block, name, original)


class MobileNetV2Trunk(nn.Module):
    """torchvision ``mobilenet_v2`` features (1280 channels); its state dict keys stay ``features.*``."""

    def __init__(self, imagenet: bool = False) -> None:
        super().__init__()
        import torchvision

        self.features = torchvision.models.mobilenet_v2(weights="DEFAULT" if imagenet else None).features
        self.out_channels = 1280

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


TORCHVISION_OTHERS = ("mobilenet_v2",)


def check_backbone_name(name: str) -> None:
    """A one-line ConfigError for a backbone name that cannot be built, without building it (a run checks
    this before reading any data). timm names from other sources (hf-hub:...) are left to timm."""
    if name in TORCHVISION_RESNETS or name in TORCHVISION_OTHERS:
        return
    if name.startswith("timm:"):
        model = name.split(":", 1)[1]
        if ":" in model:
            return
        import timm

        if not timm.is_model(model):
            raise ConfigError(f"model.backbone: timm has no model {model!r}")
        return
    known = ", ".join((*TORCHVISION_RESNETS, *TORCHVISION_OTHERS))
    raise ConfigError(f"model.backbone: unknown {name!r} (use {known} or timm:<name>)")


def build_backbone(name: str, pretrained: bool | str = False, last_stride: int = 1) -> nn.Module:
    """Create a backbone; `pretrained` is False, True (ImageNet download) or a local weights file."""
    imagenet = pretrained is True
    if name in TORCHVISION_RESNETS:
        trunk: nn.Module = ResNetTrunk(name, last_stride=last_stride, imagenet=imagenet)
    elif name == "mobilenet_v2":
        trunk = MobileNetV2Trunk(imagenet=imagenet)
    elif name.startswith("timm:"):
        trunk = TimmTrunk(name.split(":", 1)[1], imagenet=imagenet)
    else:
        check_backbone_name(name)
        raise AssertionError(f"check_backbone_name accepted {name!r}")  # pragma: no cover
    trunk.pretrained_note = ""  # what was loaded, for the run log
    if isinstance(pretrained, str) and pretrained:
        loaded, total = load_backbone_weights(trunk, pretrained)
        trunk.pretrained_note = f"model.pretrained: loaded {loaded} of {total} backbone tensors from {pretrained}"
    return trunk


def load_backbone_weights(trunk: nn.Module, path: str) -> tuple[int, int]:
    """Load ImageNet weights from a local torchvision/timm state dict; returns (loaded, total) tensors.

    Fewer than 95% of the backbone's tensors matched is a ConfigError naming the first missing and
    unexpected keys (see reid.models.pretrained).
    """
    state = read_state_dict(path)
    if isinstance(trunk, ResNetTrunk):  # map torchvision names onto the trunk's
        renamed = {}
        for key, value in state.items():
            for src, dst in (("conv1.", "stem.0."), ("bn1.", "stem.1.")):
                if key.startswith(src):
                    key = dst + key[len(src) :]
            renamed[key] = value
        return load_matching(trunk, renamed, path)
    if isinstance(trunk, MobileNetV2Trunk):
        return load_matching(trunk, state, path)
    return load_matching(trunk.net, state, path)
