import pytest
import torch

from reid.config import ModelConfig
from reid.errors import ConfigError
from reid.models import build_backbone, build_model


def test_training_returns_features_and_logits_and_eval_returns_the_bnneck_embedding():
    model = build_model(ModelConfig(backbone="resnet18", last_stride=1), num_classes=7)
    x = torch.randn(4, 3, 64, 32)
    out = model.train()(x)
    assert out["features"].shape == (4, 512) and out["logits"].shape == (4, 7)
    embedding = model.eval()(x)
    assert embedding.shape == (4, 512)
    assert not model.neck.bias.requires_grad  # BNNeck has no learnable shift


def test_last_stride_one_doubles_the_final_feature_map():
    x = torch.randn(1, 3, 64, 32)
    assert build_backbone("resnet50", last_stride=2)(x).shape[-2:] == (2, 1)
    assert build_backbone("resnet50", last_stride=1)(x).shape[-2:] == (4, 2)
    assert build_backbone("resnet18", last_stride=1)(x).shape[-2:] == (4, 2)


def test_any_timm_backbone_by_name():
    model = build_model(ModelConfig(backbone="timm:resnet10t", pooling="gem"), num_classes=3).eval()
    assert model(torch.randn(2, 3, 64, 32)).shape == (2, 512)


def test_local_weights_file_is_loaded_into_the_backbone(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    torch.nn.init.constant_(reference.conv1.weight, 0.125)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    trunk = build_backbone("resnet18", pretrained=str(path), last_stride=2)
    assert torch.all(trunk.stem[0].weight == 0.125)
    assert torch.equal(trunk.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_bad_backbone_and_weights_give_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown 'vgg'"):
        build_backbone("vgg")
    with pytest.raises(ConfigError, match="timm has no model"):
        build_backbone("timm:not_a_model_xyz")
    with pytest.raises(ConfigError, match="not found"):
        build_backbone("resnet18", pretrained=str(tmp_path / "none.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable state dict"):
        build_backbone("resnet18", pretrained=str(junk))


def test_training_output_carries_the_bnneck_output_for_the_group_loss():
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="resnet18", pretrained=False), num_classes=7).train()
    out = model(torch.randn(4, 3, 64, 32))
    torch.testing.assert_close(out["neck"], model.neck(out["features"]))
    torch.testing.assert_close(out["logits"], model.classifier(out["neck"]))
