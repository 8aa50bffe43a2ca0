"""The retrieval recipes carry the Group Loss authors' settings and build a trainer on a miniature copy."""

import pytest

from reid.config import load_config
from reid.engine.trainer import Trainer
from tests.conftest import tiny_config_overrides
from tests.mini_datasets import make_cub

# (P classes per batch, K samples per class, anchors, temperature, lr) from the authors' code
AUTHORS = {
    "cub200": (6, 9, 2, 24, 1.5637e-4),
    "cars196": (5, 7, 3, 79, 2.0e-4),
    "sop": (10, 6, 2, 54, 6.0777e-4),
}


@pytest.mark.parametrize("name", list(AUTHORS))
def test_grouploss_recipes_follow_the_authors(name):
    config = load_config(f"configs/{name}_grouploss.yaml")
    p, k, anchors, tau, lr = AUTHORS[name]
    group = config.loss["group"]
    assert (config.data.identities_per_batch, config.data.instances_per_identity) == (p, k)
    assert (group["num_anchors"], group["temperature"], group["num_iters"]) == (anchors, tau, 1)
    assert config.optim.name == "radam" and config.optim.lr == pytest.approx(lr)
    assert config.optim.reload_best_at == [31, 51] and config.optim.reload_factor == 0.1
    assert config.train.epochs == 70 and config.model.pretrained is True and config.data.val_identities > 0
    assert (config.test.k1, config.test.k2, config.test.lambda_value) == (50, 20, 0.94)


def test_baselines_and_inshop_recipes():
    rll = load_config("configs/cars196_rankedlist.yaml")
    assert set(rll.loss) == {"ranked_list"} and rll.loss["ranked_list"]["alpha"] == 1.2
    ce = load_config("configs/cars196_ce.yaml")
    assert set(ce.loss) == {"ce"} and ce.data.dataset == "cars196"
    inshop = load_config("configs/inshop_grouploss.yaml")
    assert inshop.data.dataset == "inshop" and inshop.loss["group"]["num_iters"] == 1


def test_cub_recipe_builds_a_trainer_on_a_miniature(tmp_path):
    make_cub(tmp_path, classes={**{c: 9 for c in range(1, 17)}, **{c: 3 for c in range(101, 104)}})
    overrides = tiny_config_overrides(tmp_path, tmp_path) + ["model.pretrained=false", "data.height=32"]
    overrides = [o for o in overrides if not o.startswith(("data.identities_per_batch", "data.instances_per"))]
    config = load_config("configs/cub200_grouploss.yaml", overrides)
    trainer = Trainer.from_config(config, run_dir=tmp_path / "run", progress=False)
    assert trainer.evaluator.protocol.name == "all-vs-all" and trainer.meta["num_classes"] == 6  # 16 - 10 held out
    val_query, val_gallery = trainer.evaluator.splits["val"]
    assert len(val_query) == 90 and val_gallery is val_query and trainer.evaluator.select_key == "recall@1"
    batch = next(iter(trainer.loader))
    assert batch[0].shape[0] == 6 * 9
