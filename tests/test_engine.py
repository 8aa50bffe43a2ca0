"""Trainer options on the tiny data: validation selection, reload-best, snapshots, EMA, bf16 on
the CPU, gradient clipping, plots; and their one-line configuration errors."""

from __future__ import annotations

import json

import pytest
import torch

from reid.config import load_config
from reid.engine.ema import ModelEMA
from reid.engine.precision import amp_dtype
from reid.engine.trainer import Trainer
from reid.errors import ConfigError
from reid.io.run_folder import load_checkpoint, save_checkpoint

from .conftest import tiny_config_overrides


def _config(root, out, *extra):
    return load_config("configs/demo.yaml", tiny_config_overrides(root, out) + ["train.eval_before=false", *extra])


@pytest.fixture(scope="module")
def full_run(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("engine")
    config = _config(
        tiny_root, out, "data.val_identities=2", "train.epochs=3", "train.eval_every=1", "optim.scheduler=constant",
        "optim.reload_best_at=[3]", "train.snapshot_epochs=[1,2]", "train.ema_decay=0.5", "train.amp=bf16",
        "train.grad_clip=5.0",
    )  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy shared machine: no OpenMP spinning
    try:
        trainer = Trainer.from_config(config, out / "run", progress=False)
        history = trainer.fit()
    finally:
        torch.set_num_threads(threads)
    return trainer, history


@pytest.mark.slow
def test_best_snapshots_and_ema_files_have_the_last_pt_layout(full_run):
    trainer, history = full_run
    ckpt = trainer.ckpt_dir
    lines = [json.loads(line) for line in (trainer.run_dir / "metrics.jsonl").read_text().splitlines()]
    best_epoch = max(lines, key=lambda r: r["val"]["mAP"])["epoch"]
    best = load_checkpoint(ckpt / "best.pt")
    assert best["epoch"] == history["best_epoch"]
    assert best["best_score"] == pytest.approx(lines[best["epoch"] - 1]["val"]["mAP"])
    assert best_epoch <= 3 and all("val" in r and "val_ema" in r and "test" not in r for r in lines)
    for epoch in (1, 2):
        snap = load_checkpoint(ckpt / f"epoch_{epoch:03d}.pt")
        assert snap["epoch"] == epoch and {"model", "config", "num_classes", "preprocess", "ema"} <= set(snap)
        assert snap["model"].keys() == best["model"].keys()
    assert not (ckpt / "epoch_003.pt").exists()
    ema = load_checkpoint(ckpt / "ema.pt")
    assert all(torch.equal(ema["model"][k], v) for k, v in trainer.ema.state_dict().items())
    assert set(history) >= {"final", "final_val", "final_ema", "best_epoch"}


@pytest.mark.slow
def test_reload_point_divides_the_lr_and_logs_the_reload(full_run):
    trainer, _ = full_run
    lines = [json.loads(line) for line in (trainer.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in lines] == pytest.approx([1e-3, 1e-3, 1e-4])
    assert "epoch 3: reloaded best.pt" in (trainer.run_dir / "train.log").read_text()


@pytest.mark.slow
def test_plots_are_written(full_run):
    trainer, _ = full_run
    for name in ("loss.png", "metrics.png"):
        data = (trainer.run_dir / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


@pytest.mark.slow
def test_reload_best_copies_the_best_weights_into_the_model(full_run, tmp_path):
    trainer, _ = full_run
    best = load_checkpoint(trainer.ckpt_dir / "best.pt")
    best["model"] = {k: v + 1 if v.is_floating_point() else v for k, v in best["model"].items()}
    save_checkpoint(best, trainer.ckpt_dir / "best.pt")
    trainer.reload_best(5)
    assert all(torch.equal(trainer.model.state_dict()[k], v) for k, v in best["model"].items())


def test_gradient_clipping_bounds_the_global_norm(tiny_root, tmp_path):
    trainer = Trainer.from_config(
        _config(tiny_root, tmp_path, "train.grad_clip=0.01"), tmp_path / "clip", progress=False
    )
    images, labels, _, _ = next(iter(trainer.loader))
    trainer.train_step(images, labels)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in trainer.params if p.grad is not None]))
    assert norm <= 0.01 * (1 + 1e-4)


def test_ema_follows_the_hand_worked_average():
    model = torch.nn.BatchNorm1d(2)
    with torch.no_grad():
        model.weight.zero_()
    ema = ModelEMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.num_batches_tracked.fill_(7)
    ema.update(model)
    ema.update(model)
    assert torch.allclose(ema.module.weight, torch.full((2,), 0.19))  # 0.9 * 0.1 + 0.1
    assert int(ema.module.num_batches_tracked) == 7 and not ema.module.weight.requires_grad


def test_amp_settings():
    cpu = torch.device("cpu")
    assert amp_dtype("bf16", cpu) == torch.bfloat16
    assert amp_dtype("none", cpu) is None and amp_dtype(False, cpu) is None and amp_dtype(True, cpu) is None
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        amp_dtype("fp16", cpu)
    with pytest.raises(ConfigError, match="train.amp: unknown"):
        amp_dtype("fp8", cpu)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["optim.reload_best_at=[2]"], "needs data.val_identities > 0"),
        (["train.snapshot_epochs=[9]"], "outside 1..train.epochs"),
        (["train.ema_decay=1.5"], "ema_decay"),
        (["data.identities_per_batch=9"], "data.identities_per_batch"),
    ],
)
def test_bad_options_are_config_errors(tiny_root, tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        Trainer.from_config(_config(tiny_root, tmp_path, *extra), tmp_path / "bad", progress=False)


def test_group_loss_plus_plus_phases_and_the_zero_lr_epoch_in_a_run(tiny_root, tmp_path):
    # W from the BNNeck output, no anchors and tau 30 from epoch 2, lr 0 in epoch 3: the weights stop moving
    config = _config(
        tiny_root, tmp_path, "train.epochs=3", "optim.scheduler=constant", "optim.zero_lr_from=3",
        "loss.group.w_features=bnneck", "loss.group.phases=[{from_epoch: 2, num_anchors: 0, temperature: 30}]",
    )  # fmt: skip
    trainer = Trainer.from_config(config, tmp_path / "gpp", progress=False)
    group = trainer.criterion.terms["group"]
    seen, weights = [], {}
    train_epoch = trainer.train_epoch

    def spy(epoch, *args, **kwargs):
        if epoch == 2:
            weights.update({k: v.clone() for k, v in trainer.model.state_dict().items()})
        record = train_epoch(epoch, *args, **kwargs)
        seen.append((group.num_anchors, group.temperature, record["lr"]))
        return record

    trainer.train_epoch = spy
    trainer.fit()
    assert [s[:2] for s in seen] == [(1, 10.0), (0, 30.0), (0, 30.0)]  # the demo's `group: {}`: 1 anchor, tau 10
    assert seen[2][2] == 0.0 and seen[1][2] > 0
    after = trainer.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in weights.items() if "running" not in k and "num_batches" not in k)
    assert any(not torch.equal(after[k], v) for k, v in weights.items() if "running_mean" in k)
