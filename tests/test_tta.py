"""Each Group Loss++ test-time switch against a manual computation on a tiny model."""

import copy
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reid.config import ModelConfig
from reid.errors import ConfigError
from reid.inference.features import (
    embed_batch,
    finalize_features,
)
from reid.inference.tta import resize_batch
from reid.models.backbones import _residual_preactivation
from reid.models.reid_model import build_model
from reid.test_time import TestConfig

BACKBONES = ["resnet18", "timm:resnet10t"]
SIZES = {"resnet18": (32, 16), "timm:resnet10t": (64, 32)}  # both give a 2 x 1 last feature map


@functools.cache
def _built(backbone: str, pooling: str, seed: int):
    torch.manual_seed(seed)
    return build_model(ModelConfig(backbone=backbone, pretrained=False, pooling=pooling), num_classes=5)


def make_model(backbone: str, pooling: str = "avg", seed: int = 0):
    """A seeded tiny model (built once per session: torchvision init is slow on a busy CPU)."""
    model = copy.deepcopy(_built(backbone, pooling, seed))
    with torch.no_grad():  # a non-trivial BNNeck so that it cannot hide a pooling mistake
        model.neck.running_mean.normal_(0, 0.1)
        model.neck.running_var.uniform_(0.5, 2.0)
        model.neck.weight.uniform_(0.5, 1.5)
    return model.eval()


def batch(seed: int = 0, height: int = 64, width: int = 32) -> torch.Tensor:
    return torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(seed))


def final_preactivation(model, x: torch.Tensor) -> torch.Tensor:
    """The input of the last block's final activation, caught by a hook (its last call)."""
    block = model.backbone.layer4[-1] if hasattr(model.backbone, "layer4") else model.backbone.net.layer4[-1]
    act = block.relu if hasattr(block, "relu") else (block.act3 if hasattr(block, "act3") else block.act2)
    seen = []
    handle = act.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    try:
        model(x)
    finally:
        handle.remove()
    return seen[-1]


@pytest.mark.parametrize("backbone", BACKBONES)
def test_pool_lambda_mixes_max_and_average_pooling(backbone):
    model, x = make_model(backbone), batch(0, *SIZES[backbone])
    with torch.no_grad():
        fmap = model.backbone(x)
        plain = model(x)
        torch.testing.assert_close(model.embed(x, pool_lambda=0.0), plain)
        max_model = copy.deepcopy(model)
        max_model.pooling = "max"  # same weights, trained-as-max pooling
        torch.testing.assert_close(model.embed(x, pool_lambda=1.0), max_model(x))
        manual = 0.3 * fmap.amax(dim=(2, 3)) + 0.7 * fmap.mean(dim=(2, 3))
        torch.testing.assert_close(model.embed(x, pool_lambda=0.3), model.neck(manual))
        assert not torch.allclose(model.embed(x, pool_lambda=0.3), plain)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_leaky_slope_replaces_only_the_final_relu(backbone):
    model, x = make_model(backbone), batch(1, *SIZES[backbone])
    with torch.no_grad():
        plain = model(x)
        torch.testing.assert_close(model.embed(x, leaky_slope=0.0), plain)
        pre = final_preactivation(model, x)
        assert (pre < 0).any()
        for slope in (0.5, 1.0):
            expected = model.neck(F.leaky_relu(pre, slope).mean(dim=(2, 3)))
            torch.testing.assert_close(model.embed(x, leaky_slope=slope), expected)
        both = model.embed(x, pool_lambda=0.6, leaky_slope=0.2)
        soft = F.leaky_relu(pre, 0.2)
        torch.testing.assert_close(both, model.neck(0.6 * soft.amax(dim=(2, 3)) + 0.4 * soft.mean(dim=(2, 3))))
        torch.testing.assert_close(model(x), plain)  # the model is left as it was


@pytest.mark.parametrize("kind", ["basic", "bottleneck"])
def test_manual_torchvision_block_matches_the_block(kind):
    from torchvision.models.resnet import BasicBlock, Bottleneck

    torch.manual_seed(0)
    downsample = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 1, stride=2), torch.nn.BatchNorm2d(16))
    block = BasicBlock(8, 16, 2, downsample) if kind == "basic" else Bottleneck(8, 4, 2, downsample)
    block.eval()
    x = torch.randn(2, 8, 8, 6)
    with torch.no_grad():
        torch.testing.assert_close(F.relu(_residual_preactivation(block, x)), block(x))


def test_softening_keeps_the_modules_and_state_dict_keys():
    model = make_model("timm:resnet10t")
    keys = list(model.state_dict())
    with torch.no_grad():
        model.embed(batch(), leaky_slope=0.3)
    assert list(model.state_dict()) == keys
    assert isinstance(model.backbone.net.layer4[-1].act2, torch.nn.ReLU)


def test_leaky_slope_on_a_backbone_without_final_relu_is_a_clear_error():
    model = build_model(ModelConfig(backbone="timm:mobilenetv3_small_050", pretrained=False), num_classes=3).eval()
    with pytest.raises(ConfigError, match="test.leaky_slope: the backbone timm:mobilenetv3_small_050"):
        model.embed(batch(), leaky_slope=0.1)


def test_flip_averages_the_mirror_embedding():
    model, x = make_model("timm:resnet10t"), batch(2)
    with torch.no_grad():
        manual = F.normalize((model(x) + model(torch.flip(x, dims=[3]))) / 2, dim=1)
        torch.testing.assert_close(embed_batch(model, x, TestConfig(flip=True)), manual)
        assert not torch.allclose(embed_batch(model, x, TestConfig()), manual)


def test_scales_average_resized_batches():
    model, x = make_model("timm:resnet10t"), batch(3)
    with torch.no_grad():
        big = F.interpolate(x, size=(77, 38), mode="bilinear", align_corners=False)  # 64*1.2=76.8, 32*1.2=38.4
        small = F.interpolate(x, size=(51, 26), mode="bilinear", align_corners=False, antialias=True)
        manual = F.normalize((model(x) + model(big) + model(small)) / 3, dim=1)
        got = embed_batch(model, x, TestConfig(scales=(1.0, 1.2, 0.8)))
        torch.testing.assert_close(got, manual)
        flipped = (model(x) + model(x.flip(3)) + model(big) + model(big.flip(3))) / 4
        torch.testing.assert_close(
            embed_batch(model, x, TestConfig(flip=True, scales=(1.0, 1.2))), F.normalize(flipped)
        )
    assert resize_batch(x, 1.0) is x


def test_beta_mixing_keeps_the_norm_information():
    model, x = make_model("timm:resnet10t"), batch(4)
    with torch.no_grad():
        f = model(x)
        got = embed_batch(model, x, TestConfig(beta=0.004))
    expected = f / f.norm(dim=1, keepdim=True) + 0.004 * f
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(F.normalize(got), F.normalize(f))  # why we do not normalise e again
    assert TestConfig(beta=0.004).metric == "half_squared_euclidean" and TestConfig().metric == "cosine"
    raw = f.numpy()
    np.testing.assert_allclose(finalize_features(raw, 0.004), expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(scales=()), "test.scales"),
        (dict(scales=(1.0, -1.0)), "test.scales"),
        (dict(pool_lambda=1.5), "test.pool_lambda: expected 0.0..1.0"),
        (dict(leaky_slope=-0.1), "test.leaky_slope: expected 0.0..1.0"),
        (dict(beta=-1.0), "test.beta: expected >= 0"),
    ],
)
def test_bad_options_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TestConfig(**kwargs)


def test_describe_and_network_key():
    opts = TestConfig(flip=True, scales=[1, 1.1], pool_lambda=0.5, leaky_slope=0.1, beta=0.002)
    assert opts.describe() == "flip+scales=1,1.1+pool_lambda=0.5+leaky=0.1+beta=0.002"
    assert opts.network_key() == (True, (1.0, 1.1), 0.5, 0.1)
    assert opts.scales == [1.0, 1.1]
    assert TestConfig().describe() == "none"
