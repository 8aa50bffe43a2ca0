"""Backbones that return a feature map (B, C, h, w): torchvision ResNets or any timm model."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from reid.errors import ConfigError

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.net.forward_features(x)
        if features.ndim == 3:  # vision transformers: (B, tokens, C) -> (B, C, tokens, 1)
            features = features.transpose(1, 2).unsqueeze(-1)
        return features


def build_backbone(name: str, pretrained: bool | str = False, last_stride: int = 1) -> nn.Module:
    """Create a backbone; `pretrained` is False, True (ImageNet download) or a local weights file."""
    imagenet = pretrained is True
    if name in TORCHVISION_RESNETS:
        trunk: nn.Module = ResNetTrunk(name, last_stride=last_stride, imagenet=imagenet)
    elif name.startswith("timm:"):
        trunk = TimmTrunk(name.split(":", 1)[1], imagenet=imagenet)
    else:
        raise ConfigError(f"model.backbone: unknown {name!r} (use {', '.join(TORCHVISION_RESNETS)} or timm:<name>)")
    if isinstance(pretrained, str) and pretrained:
        load_backbone_weights(trunk, pretrained)
    return trunk


def load_backbone_weights(trunk: nn.Module, path: str) -> None:
    """Load ImageNet weights from a local file (a torchvision/timm state dict)."""
    if not Path(path).is_file():
        raise ConfigError(f"model.pretrained: weights file {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
        raise ConfigError(f"model.pretrained: {path} is not a readable state dict ({exc.__class__.__name__})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if isinstance(trunk, ResNetTrunk):  # map torchvision names onto the trunk's
        renamed = {}
        for key, value in state.items():
            for src, dst in (("conv1.", "stem.0."), ("bn1.", "stem.1.")):
                if key.startswith(src):
                    key = dst + key[len(src) :]
            renamed[key] = value
        state = renamed
        target = trunk
    else:
        target = trunk.net
    missing, _ = target.load_state_dict(state, strict=False)
    if len(missing) == len(list(target.state_dict())):
        raise ConfigError(f"model.pretrained: no weight in {path} matches the backbone")
