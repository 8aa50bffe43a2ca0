"""Learning-rate schedules, checked against hand-worked values."""

import math
import warnings

import pytest
import torch

from reid.config import OptimConfig
from reid.engine.schedule import build_optimizer, build_scheduler, lr_factor, reload_drops
from reid.errors import ConfigError


def _lrs(cfg: OptimConfig, epochs: int) -> list[float]:
    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg)
    scheduler = build_scheduler(optimizer, cfg, epochs)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_then_multistep():
    cfg = OptimConfig(lr=1.0, scheduler="multistep", milestones=[3, 5], gamma=0.1, warmup_epochs=2,
                      warmup_factor=0.1)  # fmt: skip
    assert _lrs(cfg, 6) == pytest.approx([0.1, 0.55, 1.0, 0.1, 0.1, 0.01])


def test_cosine_after_warmup_reaches_zero_at_the_end():
    cfg = OptimConfig(lr=2.0, scheduler="cosine", warmup_epochs=1, warmup_factor=0.5)
    lrs = _lrs(cfg, 5)
    assert lrs[0] == pytest.approx(1.0)
    assert lrs[1:] == pytest.approx([2.0 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])


def test_authors_reload_points_divide_the_lr_by_ten_from_those_epochs_on():
    cfg = OptimConfig(lr=2e-4, scheduler="constant", reload_best_at=[31, 51])
    lrs = _lrs(cfg, 70)
    assert lrs[29] == pytest.approx(2e-4) and lrs[30] == pytest.approx(2e-5)  # epoch 31 (1-based) is index 30
    assert lrs[49] == pytest.approx(2e-5) and lrs[50] == pytest.approx(2e-6) and lrs[69] == pytest.approx(2e-6)
    assert [reload_drops(e, cfg) for e in (0, 29, 30, 49, 50)] == [0, 0, 1, 1, 2]


def test_reload_drops_compose_with_warmup():
    cfg = OptimConfig(scheduler="constant", warmup_epochs=4, warmup_factor=0.0, reload_best_at=[3], reload_factor=0.5)
    assert [lr_factor(e, cfg, 10) for e in range(5)] == pytest.approx([0.0, 0.25, 0.25, 0.375, 0.5])


def test_bad_schedules_are_config_errors():
    param = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ConfigError, match="unknown schedule"):
        build_scheduler(build_optimizer(param, OptimConfig()), OptimConfig(scheduler="linear"), 10)
    with pytest.raises(ConfigError, match="reload_best_at"):
        build_scheduler(build_optimizer(param, OptimConfig()), OptimConfig(reload_best_at=[1]), 10)


def test_zero_lr_phase_stops_the_weights_but_not_the_batchnorm_statistics():
    cfg = OptimConfig(lr=1e-3, scheduler="constant", reload_best_at=[3], zero_lr_from=5)
    assert [lr_factor(e, cfg, 6) for e in range(6)] == pytest.approx([1, 1, 0.1, 0.1, 0, 0])
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    optimizer = build_optimizer(net.parameters(), OptimConfig(name="adam", lr=1e-3, weight_decay=5e-4))
    scheduler = build_scheduler(optimizer, OptimConfig(lr=1e-3, scheduler="constant", zero_lr_from=2), 3)
    with warnings.catch_warnings():  # stepping the schedule before any optimizer step is the point here
        warnings.simplefilter("ignore")
        scheduler.step()  # now in epoch 2 (1-based): lr 0
    assert optimizer.param_groups[0]["lr"] == 0.0
    weights = [p.detach().clone() for p in net.parameters()]
    stats = net[1].running_mean.clone()
    net(torch.randn(8, 3)).square().sum().backward()
    optimizer.step()
    assert all(torch.equal(w, p) for w, p in zip(weights, net.parameters()))  # Adam with weight decay: unchanged
    assert not torch.equal(stats, net[1].running_mean)  # the BatchNorm statistics still adapt
    with pytest.raises(ConfigError, match="zero_lr_from: expected a 1-based epoch >= 2"):
        build_scheduler(optimizer, OptimConfig(zero_lr_from=1), 3)
