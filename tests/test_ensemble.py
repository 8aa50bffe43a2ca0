"""Temporal ensembling: weight averaging, feature mean / concatenation, snapshot resolution."""

import numpy as np
import pytest
import torch

from reid.config import Config
from reid.errors import ReidError
from reid.evaluation.distance import cosine_distance, half_squared_euclidean
from reid.inference.ensemble import (
    average_state_dicts,
    combine_features,
    discover_snapshots,
    load_snapshots,
    resolve_snapshots,
)
from reid.io.run_folder import save_checkpoint


def test_average_state_dicts_matches_a_loop_and_keeps_counters_from_the_last():
    g = torch.Generator().manual_seed(0)
    states = [
        {
            "w": torch.randn(3, 2, generator=g),
            "bn.running_var": torch.rand(4, generator=g) + 0.5,
            "bn.num_batches_tracked": torch.tensor(10 * (i + 1)),
            "half": torch.randn(2, generator=g).half(),
        }
        for i in range(3)
    ]
    avg = average_state_dicts(states)
    for key in ("w", "bn.running_var"):
        expected = np.zeros(states[0][key].shape)
        for state in states:
            expected += state[key].double().numpy() / 3
        np.testing.assert_allclose(avg[key].numpy(), expected, rtol=1e-6)
        assert avg[key].dtype == torch.float32
    assert avg["bn.num_batches_tracked"].item() == 30
    assert avg["half"].dtype == torch.float16


def test_average_state_dicts_refuses_different_layouts():
    with pytest.raises(ValueError, match="state dict 1 has different keys or shapes"):
        average_state_dicts([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}])
    with pytest.raises(ValueError, match="no state dicts"):
        average_state_dicts([])


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_concat_distance_is_the_mean_of_the_snapshot_distances():
    rng = np.random.default_rng(1)
    qs = [unit(rng.normal(size=(4, 5))) for _ in range(3)]
    gs = [unit(rng.normal(size=(6, 5))) for _ in range(3)]
    q, g = combine_features(qs, "concat"), combine_features(gs, "concat")
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, rtol=1e-6)
    mean_dist = np.mean([cosine_distance(a, b) for a, b in zip(qs, gs)], axis=0)
    np.testing.assert_allclose(cosine_distance(q, g), mean_dist, atol=1e-6)
    # with beta-mixed (non-unit) features the same holds for the half squared Euclidean distance
    qs2, gs2 = [2 * a for a in qs], [3 * b for b in gs]
    mean_eu = np.mean([half_squared_euclidean(a, b) for a, b in zip(qs2, gs2)], axis=0)
    got = half_squared_euclidean(combine_features(qs2, "concat"), combine_features(gs2, "concat"))
    np.testing.assert_allclose(got, mean_eu, rtol=1e-5)


def test_feature_mean_is_renormalised_only_for_unit_features():
    a, b = np.array([[1.0, 0.0]], np.float32), np.array([[0.0, 1.0]], np.float32)
    np.testing.assert_allclose(combine_features([a, b], "features"), [[2**-0.5, 2**-0.5]], rtol=1e-6)
    np.testing.assert_allclose(combine_features([a, b], "features", normalize=False), [[0.5, 0.5]])
    with pytest.raises(ValueError, match="unknown feature ensemble mode"):
        combine_features([a], "weights")


def fake_checkpoint(path, backbone="timm:resnet10t", num_classes=3, epoch=1):
    config = Config()
    config.model.backbone = backbone
    state = {"model": {"w": torch.zeros(1)}, "config": config.to_dict(), "num_classes": num_classes}
    save_checkpoint({**state, "preprocess": {"height": 64, "width": 32}, "epoch": epoch}, path)


def test_snapshots_resolve_against_the_run_checkpoints_folder(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    for name in ("epoch_010.pt", "epoch_005.pt", "last.pt"):
        fake_checkpoint(folder / name)
    run = tmp_path / "run"
    assert resolve_snapshots(run, ["epoch_005.pt", " last.pt"]) == [folder / "epoch_005.pt", folder / "last.pt"]
    assert resolve_snapshots(folder / "last.pt", ["epoch_010.pt", "last.pt"])[0] == folder / "epoch_010.pt"
    assert discover_snapshots(run) == [folder / "epoch_005.pt", folder / "epoch_010.pt", folder / "last.pt"]
    with pytest.raises(ReidError, match="epoch_099.pt not found"):
        resolve_snapshots(run, ["epoch_005.pt", "epoch_099.pt"])
    with pytest.raises(ReidError, match="at least two checkpoints"):
        resolve_snapshots(run, ["last.pt"])


def test_snapshots_of_different_models_are_refused(tmp_path):
    fake_checkpoint(tmp_path / "a.pt")
    fake_checkpoint(tmp_path / "b.pt", backbone="resnet18")
    fake_checkpoint(tmp_path / "c.pt", num_classes=4)
    with pytest.raises(ReidError, match="b.pt is a different model"):
        load_snapshots([tmp_path / "a.pt", tmp_path / "b.pt"])
    with pytest.raises(ReidError, match="c.pt is a different model"):
        load_snapshots([tmp_path / "a.pt", tmp_path / "c.pt"])
