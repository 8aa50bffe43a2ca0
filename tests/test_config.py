import pytest

from reid.config import Config, config_from_dict, load_config
from reid.errors import ConfigError


def test_yaml_file_and_dotted_overrides_are_merged_with_types(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  epochs: 7\nloss:\n  group: {temperature: 40}\n")
    config = load_config(
        path, ["optim.lr=0.002", "loss.group.num_iters=3", "loss.ce.weight=0.5", "model.pretrained=w.pt"]
    )
    assert config.train.epochs == 7
    assert config.optim.lr == pytest.approx(0.002)
    assert config.loss == {"group": {"temperature": 40, "num_iters": 3}, "ce": {"weight": 0.5}}
    assert config.model.pretrained == "w.pt"
    assert config.data.height == 256  # default kept


def test_unknown_keys_and_bad_files_raise_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key train\.epoch \(known: "):
        load_config(None, ["train.epoch=3"])
    with pytest.raises(ConfigError, match="not of the form"):
        load_config(None, ["train.epochs"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_config_round_trips_through_a_dict_and_hash_tracks_changes():
    config = load_config(None, ["train.epochs=3"])
    assert config_from_dict(config.to_dict()) == config
    assert config.hash() == config_from_dict(config.to_dict()).hash()
    assert config.hash() != Config().hash()
