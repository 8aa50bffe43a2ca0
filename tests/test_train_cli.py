"""End to end through the CLI on the tiny synthetic data: train, resume refusal, test, extract."""

import json

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from reid.cli import cli
from reid.io.run_folder import load_checkpoint

from .conftest import tiny_config_overrides


@pytest.fixture(scope="module")
def trained_run(tiny_run):
    return tiny_run


def test_train_writes_the_run_folder_and_prints_untrained_vs_trained(trained_run):
    run_dir, output = trained_run
    assert "untrained" in output and "trained (2 ep)" in output
    for name in ("config.yaml", "train.log", "metrics.jsonl", "metrics.json", "checkpoints/last.pt"):
        assert (run_dir / name).is_file(), name
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    assert all(np.isfinite(line["loss"]) and line["group"] > 0 for line in lines)
    history = json.loads((run_dir / "metrics.json").read_text())
    assert set(history) >= {"untrained", "final"}
    assert 0.0 <= history["final"]["mAP"] <= 1.0


def test_checkpoint_is_a_plain_dict_loadable_with_weights_only(trained_run):
    run_dir, _ = trained_run
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["epoch"] == 2
    assert {"model", "optimizer", "scheduler", "config", "metrics", "preprocess"} <= set(state)
    assert state["preprocess"]["height"] == 64 and state["preprocess"]["color"] == "rgb"
    torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)


def test_training_again_into_the_same_folder_is_refused(trained_run, tiny_root):
    run_dir, _ = trained_run
    args = ["train", "-c", "configs/demo.yaml", "--quiet", "--output", str(run_dir)]
    result = CliRunner().invoke(cli, args + tiny_config_overrides(tiny_root, run_dir.parent))
    assert result.exit_code != 0
    assert "already holds a run" in str(result.exception)


def test_test_command_reproduces_the_final_metrics(trained_run, tiny_root):
    run_dir, _ = trained_run
    result = CliRunner().invoke(cli, ["test", "-m", str(run_dir), "--data-root", str(tiny_root), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    saved = json.loads((run_dir / "test_metrics.json").read_text())
    final = json.loads((run_dir / "metrics.json").read_text())["final"]
    assert saved["mAP"] == pytest.approx(final["mAP"], abs=1e-6)


def test_extract_writes_the_hdf5_layout(trained_run, tiny_root, tmp_path):
    run_dir, _ = trained_run
    out = tmp_path / "query.h5"
    args = ["extract", "-m", str(run_dir), "--dataset", "synthetic", "--split", "query"]
    result = CliRunner().invoke(cli, args + ["--data-root", str(tiny_root), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    with h5py.File(out) as h5:
        features = h5["features"][()]
        assert features.dtype == np.float32 and features.shape[1] == 512
        np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
        assert len(h5["pids"]) == len(h5["camids"]) == len(h5["paths"]) == len(features)
        assert h5.attrs["backbone"] == "timm:resnet10t" and h5.attrs["tta"] == "none"
    assert not out.with_name(out.name + ".partial").exists()


def test_user_mistakes_are_one_line_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "-c", str(tmp_path / "nope.yaml")])
    assert result.exit_code != 0 and "config file not found" in str(result.exception)
    result = runner.invoke(cli, ["test", "-m", str(tmp_path / "nothing.pt")])
    assert "checkpoint not found" in str(result.exception)
