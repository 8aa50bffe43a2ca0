"""The ablation: its rows, feature reuse across settings, and the timing/metric bookkeeping."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reid.data.datasets import build_dataset
from reid.data.transforms import Preprocess
from reid.evaluation.tables import format_ablation_table
from reid.inference.ablation import (
    AblationRow,
    Setting,
    ablation_settings,
    run_ablation,
    strategy_values,
    write_ablation,
)
from reid.inference.features import finalize_features
from reid.inference.pipeline import FeatureBank, score_features
from reid.test_time import TestConfig


class CountingModel(torch.nn.Module):
    """A cheap deterministic 'model': colour statistics of a fixed 4 x 2 grid, counting its passes."""

    def __init__(self) -> None:
        super().__init__()
        self.passes = 0
        self.feature_dim = 24

    def _map(self, x: torch.Tensor, leaky_slope: float | None) -> torch.Tensor:
        self.passes += 1
        fmap = F.adaptive_avg_pool2d(x, (4, 2)) - 0.1
        return fmap if leaky_slope is None else F.leaky_relu(fmap, leaky_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._map(x, None).flatten(1)

    def embed(self, x, pool_lambda=None, leaky_slope=None):
        fmap = self._map(x, leaky_slope)
        if pool_lambda is not None:  # a different but deterministic use of lambda for the check
            fmap = fmap * (1 + pool_lambda)
        return fmap.flatten(1)


@pytest.fixture(scope="module")
def split(tiny_root):
    data = build_dataset("synthetic", tiny_root)
    return data.query, data.gallery, Preprocess(height=64, width=32)


def test_settings_cover_each_strategy_then_all_together():
    names = [s.name for s in ablation_settings()]
    assert names == [
        "baseline",
        "flip",
        "multiscale 1,1.1",
        "pool mix lambda=0.5",
        "leaky slope=0.1",
        "beta mixing beta=0.002",
        "alpha-QE",
        "DBA",
        "re-ranking",
        "all together",
    ]
    settings = ablation_settings(ensemble_modes=["weights", "concat"], ensemble_mode="concat", with_post=False)
    assert [s.name for s in settings][-4:] == [
        "ensemble (weights)",
        "ensemble (concat)",
        "all, single model",
        "all + ensemble (concat)",
    ]
    last = settings[-1]
    assert last.models == "concat" and last.settings.qe == "none" and not last.settings.rerank
    assert TestConfig(**last.settings.feature_dict()) == TestConfig(
        flip=True, scales=[1.0, 1.1], pool_lambda=0.5, leaky_slope=0.1, beta=0.002
    )


def test_user_values_replace_the_defaults():
    user = TestConfig(scales=[0.9, 1.0], pool_lambda=0.6, beta=0.001, qe="dba", k1=10)
    full = strategy_values(user)
    assert TestConfig(**full.feature_dict()) == TestConfig(
        flip=True, scales=[0.9, 1.0], pool_lambda=0.6, leaky_slope=0.1, beta=0.001
    )
    assert full.qe == "dba" and full.rerank and full.k1 == 10


def test_features_are_extracted_once_per_network_configuration(split):
    query, gallery, pre = split
    model = CountingModel()
    bank = FeatureBank(query, gallery, pre, batch_size=64, progress=False)
    settings = ablation_settings(with_post=False)
    rows = run_ablation(bank, {"single": [("m", model)]}, settings, query, gallery)
    assert [r.name for r in rows] == [s.name for s in settings]
    batches = 2  # one query batch + one gallery batch of <= 64 images
    # warm-up 1; baseline (and beta) 1 view; flip 2; scales 2; pool 1; leaky 1; all: flip x 2 scales = 4
    assert model.passes == 1 + batches * (1 + 2 + 2 + 1 + 1 + 4)
    by_name = {r.name: r for r in rows}
    beta_row, base_row = by_name["beta mixing beta=0.002"], by_name["baseline"]
    # the beta row reuses the baseline raw features (no new pass), mixed: check against a direct computation
    q_raw, g_raw, raw_s = bank.raw("m", model, TestConfig())
    assert beta_row.extract_s >= raw_s > 0 and base_row.extract_s >= raw_s  # the shared extraction is charged to both
    q, g = finalize_features(q_raw, 0.002), finalize_features(g_raw, 0.002)
    expected, _, _ = score_features(q, g, query, gallery, TestConfig(beta=0.002))
    assert beta_row.metrics == expected.as_dict()
    leaky = by_name["leaky slope=0.1"].metrics
    assert leaky != base_row.metrics  # the leaky pass really changed the features


def test_table_and_json(tmp_path):
    metrics = {"rank1": 0.5, "rank5": 0.7, "rank10": 0.8, "mAP": 0.25, "mINP": 0.1}
    rows = [
        AblationRow("baseline", metrics, 1.0, 0.5, {"models": "single"}),
        AblationRow("flip", {**metrics, "mAP": 0.3}, 2.0, 0.25),
    ]
    table = format_ablation_table(rows).splitlines()
    assert table[0].split() == ["strategy", "rank1", "mAP", "mINP", "dmAP", "seconds"]
    assert table[2].split() == ["baseline", "50.0%", "25.0%", "10.0%", "+0.0", "1.50"]
    assert table[3].split() == ["flip", "50.0%", "30.0%", "10.0%", "+5.0", "2.25"]
    write_ablation(tmp_path / "a.json", rows, {"dataset": "x"})
    saved = json.loads((tmp_path / "a.json").read_text())
    assert saved["dataset"] == "x" and saved["rows"][1]["seconds"] == pytest.approx(2.25)
    assert saved["rows"][0]["models"] == "single" and saved["rows"][0]["mAP"] == 0.25


def test_feature_ensembles_reuse_each_snapshot(split):
    query, gallery, pre = split
    a, b = CountingModel(), CountingModel()
    bank = FeatureBank(query, gallery, pre, batch_size=64, progress=False)
    sets = {"features": [("a", a), ("b", b)], "concat": [("a", a), ("b", b)]}
    settings = [Setting("f", models="features"), Setting("c", models="concat")]
    run_ablation(bank, sets, settings, query, gallery)
    assert a.passes == b.passes == 1 + 2
    q, g, _ = bank.features(sets["concat"], TestConfig(), "concat")
    qa, _, _ = bank.raw("a", a, TestConfig())
    np.testing.assert_allclose(q[:, :24] * np.sqrt(2), finalize_features(qa), rtol=1e-6)
