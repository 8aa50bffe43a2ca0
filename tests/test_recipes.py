"""Every shipped recipe loads and builds; the authors' classifier warm-up trains only the classifier."""

from pathlib import Path

import pytest
import torch

from reid.config import check_options, load_config
from reid.engine.trainer import Trainer
from reid.losses import build_loss

from .conftest import tiny_config_overrides

CONFIGS = sorted(p for p in Path("configs").glob("*.yaml") if not p.stem.startswith("tune_"))  # tune_*: search spaces


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_recipe_loads_and_its_options_and_losses_build(path):
    config = load_config(path)
    check_options(config)
    loss = build_loss(config.loss, num_classes=751)
    assert len(loss.terms) >= 1


@pytest.mark.parametrize("name", ["market1501_grouploss_authors", "dukemtmc_grouploss_authors"])
def test_authors_recipe_matches_method_md(name):
    config = load_config(f"configs/{name}.yaml")
    group = build_loss(config.loss, num_classes=751).terms["group"]
    assert (group.temperature, group.num_anchors, group.num_iters, group.similarity) == (80, 3, 2, "pearson")
    assert (group.ce_weight, group.ce.epsilon, group.detach_similarity) == (1.0, 0.1, False)
    assert group.propagation_weight == 1.0
    assert (config.data.identities_per_batch, config.data.instances_per_identity) == (3, 4)
    assert config.optim.name == "radam" and config.optim.lr == pytest.approx(1.3e-5)
    assert config.train.classifier_warmup_epochs == 10 and config.optim.reload_best_at == [41, 61]


def test_classifier_warmup_freezes_backbone_and_batchnorm(tiny_root, tmp_path):
    overrides = tiny_config_overrides(tiny_root, tmp_path) + ["train.classifier_warmup_epochs=1", "train.plots=false"]
    trainer = Trainer.from_config(load_config("configs/demo.yaml", overrides), run_dir=tmp_path / "run", progress=False)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    record = trainer.train_epoch(0)
    after = trainer.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"classifier.weight"}  # backbone, neck and BN statistics untouched
    assert record["warmup_ce"] > 0 and "group" not in record
    trainer.train_epoch(1)
    assert any(not torch.equal(before[k], trainer.model.state_dict()[k]) for k in before if k.startswith("backbone"))
