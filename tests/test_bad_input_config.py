"""Issue 11 items 3 and 4: config values typed and checked at load; YAML aliases refused."""

import pytest

from reid.config import load_config
from reid.errors import ConfigError
from tests.bad_input_helpers import run_reid


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=abc", "train.epochs: expected an integer, got 'abc'"),
        ("train.epochs=2.5", "train.epochs: expected an integer, got 2.5"),
        ("train.seed=abc", "train.seed: expected an integer, got 'abc'"),
        ("optim.lr=nan", "optim.lr: expected a finite number, got 'nan'"),
        ("optim.lr=-1", "optim.lr: expected > 0.0, got -1.0"),
        ("train.snapshot_epochs=5", "train.snapshot_epochs: expected a list (e.g. [5, 10]), got 5"),
        ("data.height=0", "data.height: expected >= 1, got 0"),
        ("train.batch_size_test=0", "train.batch_size_test: expected >= 1, got 0"),
        ("model.pooling=median", "model.pooling: expected one of avg, max, gem, got 'median'"),
        ("train.grad_clip=.nan", "train.grad_clip: expected a finite number, got nan"),
        ("data.random_erasing=2", "data.random_erasing: expected 0.0..1.0, got 2.0"),
        ("data.workers=-1", "data.workers: expected >= 0, got -1"),
        ("train.epochs=0", "train.epochs: expected >= 1, got 0"),
        ("train.seed=2024-01-01", "train.seed: expected an integer, got a date (2024-01-01)"),
        ("train.run_name=!!binary aGVsbG8=", "train.run_name: expected a string, got binary data"),
        ("train.amp=fp8", "train.amp: expected one of none, bf16, fp16, got 'fp8'"),
        ("test.scales=[1.0, -1]", "test.scales[1]: expected > 0.0, got -1.0"),
        ("loss.group.temperature=.inf", "loss.group.temperature: expected a finite number, got inf"),
    ],
)
def test_bad_values_name_the_key_and_what_was_expected(override, message):
    with pytest.raises(ConfigError) as err:
        load_config("configs/demo.yaml", [override])
    assert str(err.value) == message


def test_yaml_1_1_exponent_floats_are_read_as_floats(tmp_path):
    # YAML 1.1 reads 5e-4 and 1e-3 as strings: the README's own example crashed inside Adam
    path = tmp_path / "run.yaml"
    path.write_text("optim:\n  lr: 1e-3\n  weight_decay: 5E-4\nloss:\n  group: {temperature: 1e1}\n")
    config = load_config(path, ["optim.gamma=5e-1"])
    assert config.optim.lr == 1e-3 and isinstance(config.optim.lr, float)
    assert config.optim.weight_decay == 5e-4 and config.optim.gamma == 0.5
    assert config.loss["group"]["temperature"] == 10.0
    assert load_config("configs/demo.yaml", ["optim.lr=5e-4"]).optim.lr == 5e-4


def test_values_keep_their_union_types():
    config = load_config(None, ["train.amp=bf16", "model.pretrained=true", "test.pool_lambda=0.5", "data.root=123"])
    assert (config.train.amp, config.model.pretrained, config.test.pool_lambda) == ("bf16", True, 0.5)
    assert config.data.root == "123"
    assert load_config(None, ["model.pretrained=w.pt", "train.amp=false"]).model.pretrained == "w.pt"


def test_dates_and_binary_in_a_file_are_refused(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  run_name: !!binary aGVsbG8=\n")
    with pytest.raises(ConfigError, match=r"^train\.run_name: expected a string, got binary data$"):
        load_config(path)
    path.write_text("data:\n  root: 2024-05-01\n")
    with pytest.raises(ConfigError, match=r"^data\.root: expected a string, got a date \(2024-05-01\)$"):
        load_config(path)


def test_cli_rejects_a_bad_value_in_one_line_before_reading_data(capsys, monkeypatch, tmp_path):
    result = run_reid(
        capsys, monkeypatch, "train", "-c", "configs/demo.yaml", "data.workers=-1", f"train.output_dir={tmp_path}"
    )
    assert result.code == 2
    assert result.one_line_error == "Error: data.workers: expected >= 0, got -1"
    assert not any(tmp_path.iterdir())  # nothing was created: checked before the run folder


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.epochs=1"], "Error: train.snapshot_epochs: [20, 25] outside 1..train.epochs (1)"),
        (
            ["optim.reload_best_at=[3]", "train.snapshot_epochs=[]"],
            "Error: optim.reload_best_at needs data.val_identities > 0 and train.eval_every > 0",
        ),
        (["train.classifier_warmup_epochs=30"], "Error: train.classifier_warmup_epochs must be in [0, train.epochs)"),
        (["train.amp=fp16"], "Error: train.amp = fp16 needs a CUDA device"),
        (["model.backbone=timm:no_such_net"], "Error: model.backbone: timm has no model 'no_such_net'"),
        (["model.backbone=resnet5"], "Error: model.backbone: unknown 'resnet5'"),
        (["loss.group.temprature=3"], "Error: loss.group.temprature: unknown option"),
        (["loss.tripplet.weight=1"], "Error: loss.tripplet: unknown loss"),
        (["optim.reload_best_at=[1]", "data.val_identities=2", "train.eval_every=1"], "Error: optim.reload_best_at:"),
    ],
)
def test_a_bad_option_combination_fails_before_any_data_is_read(capsys, monkeypatch, tmp_path, overrides, message):
    import reid.engine.setup

    def no_data(*args, **kwargs):
        raise AssertionError("the data set was read before the options were checked")

    monkeypatch.setattr(reid.engine.setup, "build_dataset", no_data)
    root, out = tmp_path / "no-such-data", tmp_path / "runs"
    args = ["train", "-c", "configs/demo.yaml", f"data.root={root}", f"train.output_dir={out}", "train.device=cpu"]
    result = run_reid(capsys, monkeypatch, *args, *overrides)
    assert result.code == 2
    assert result.one_line_error.startswith(message)
    assert not out.exists() and not root.exists()  # no run folder either


def test_backbone_names_are_checked_without_building_them():
    from reid.models.backbones import check_backbone_name

    for name in ("resnet50", "mobilenet_v2", "timm:resnet10t", "timm:resnet10t.c3_in1k", "timm:hf-hub:timm/x"):
        check_backbone_name(name)  # hub names are left to timm when the model is created
    with pytest.raises(ConfigError, match=r"^model\.backbone: unknown 'vgg16' \(use resnet18, .* or timm:<name>\)$"):
        check_backbone_name("vgg16")


def test_nested_aliases_are_refused_without_expanding_them(tmp_path):
    # 8 levels of 10 aliases: 10^8 leaves once expanded (the JSON round trip grew to 23 GB)
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 1024
    with pytest.raises(ConfigError, match=r"laughs\.yaml: line 1: YAML anchors \(&name\) are not allowed"):
        load_config(path)
    with pytest.raises(ConfigError, match="YAML aliases"):
        load_config(None, ["train.snapshot_epochs=[*a]"])
