"""The Group Loss options added for the ablation: a detached W and the weight of the propagation term."""

from __future__ import annotations

import pytest
import torch

from reid.losses import GroupLoss, build_loss


def batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    emb = torch.randn(8, 6, generator=gen).abs().requires_grad_()
    logits = torch.randn(8, 5, generator=gen).requires_grad_()
    return emb, logits, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])


def test_detached_similarity_gives_the_same_value_and_no_gradient_through_w():
    emb, logits, labels = batch()
    anchors = torch.tensor([True, False] * 4)
    plain = GroupLoss(5, temperature=10, num_anchors=1, ce_weight=0.0)
    detached = GroupLoss(5, temperature=10, num_anchors=1, ce_weight=0.0, detach_similarity=True)
    value = detached(emb, logits, labels, anchor_mask=anchors)
    torch.testing.assert_close(value, plain(emb, logits, labels, anchor_mask=anchors))
    grad_emb, grad_logits = torch.autograd.grad(value, (emb, logits), allow_unused=True)
    assert grad_emb is None  # only the prior (logits) learns from the propagation term
    assert grad_logits.abs().sum() > 0
    grad_emb = torch.autograd.grad(plain(emb, logits, labels, anchor_mask=anchors), emb)[0]
    assert grad_emb.abs().sum() > 0


def test_propagation_weight_scales_only_the_nll_term():
    emb, logits, labels = batch(1)
    anchors = torch.tensor([True, False] * 4)
    base = GroupLoss(5, temperature=10, num_anchors=1)
    nll, ce = base.terms(emb, logits, labels, anchor_mask=anchors)
    weighted = GroupLoss(5, temperature=10, num_anchors=1, propagation_weight=2.5)
    torch.testing.assert_close(weighted(emb, logits, labels, anchor_mask=anchors), 2.5 * nll + ce)
    _, parts = build_loss({"group": {"preset": "authors", "propagation_weight": 2.5, "num_anchors": 1}}, 5)(
        emb, logits, labels
    )
    assert parts["group"] == pytest.approx(2.5 * parts["group.nll"] + parts["group.ce"], rel=1e-6)
    with pytest.raises(ValueError, match="propagation_weight must be >= 0"):
        GroupLoss(5, propagation_weight=-1.0)


def test_w_from_the_bnneck_output_is_routed_by_the_combined_loss():
    emb, logits, labels = batch(2)
    neck = torch.randn(8, 6, generator=torch.Generator().manual_seed(9)).requires_grad_()
    criterion = build_loss({"group": {"w_features": "bnneck", "num_anchors": 1}}, 5)
    torch.manual_seed(3)  # the combined loss draws its anchors from the global RNG
    total, parts = criterion(emb, logits, labels, neck=neck)
    torch.manual_seed(3)
    nll, ce = criterion.terms["group"].terms(neck, logits, labels)
    torch.testing.assert_close(total, nll + ce)
    assert torch.autograd.grad(total, emb, allow_unused=True)[0] is None  # W came from the neck, not the pooled
    assert torch.autograd.grad(criterion(emb, logits, labels, neck=neck)[0], neck)[0].abs().sum() > 0
    pooled = build_loss({"group": {"num_anchors": 1}}, 5)  # the default: W from the pooled features
    torch.manual_seed(3)
    value = pooled(emb, logits, labels, neck=neck)[0]
    torch.manual_seed(3)
    torch.testing.assert_close(value, pooled.terms["group"](emb, logits, labels))
    with pytest.raises(ValueError, match="no BNNeck output"):
        criterion(emb, logits, labels)


def test_w_features_is_checked_and_named_in_the_config_error():
    from reid.errors import ConfigError

    with pytest.raises(ConfigError, match=r"loss\.group: .*w_features must be one of \('pooled', 'bnneck'\)"):
        build_loss({"group": {"w_features": "l2"}}, 5)
    assert GroupLoss(5).w_features == "pooled"
    assert build_loss({"group": {"preset": "authors"}}, 5).terms["group"].w_features == "pooled"


@pytest.mark.parametrize("similarity", ["pearson", "cosine"])
def test_w_is_the_same_from_l2_normalised_features(similarity):
    # why "L2-normalised features" is no third W source: both similarities ignore a positive row scale
    emb = torch.randn(8, 6, generator=torch.Generator().manual_seed(4))
    scaled = emb * torch.tensor([0.01, 1, 3, 7, 100, 0.5, 2, 40]).unsqueeze(1)
    loss = GroupLoss(5, similarity=similarity)
    w = loss.similarity_matrix(emb)
    torch.testing.assert_close(loss.similarity_matrix(torch.nn.functional.normalize(emb, dim=1)), w)
    torch.testing.assert_close(loss.similarity_matrix(scaled), w)


def test_phases_switch_the_options_from_their_epoch_on_and_back_on_resume():
    # Group Loss++: no anchors, cosine W, tau 30 from epoch 3 (1-based); T 1 from epoch 5
    phases = [
        {"from_epoch": 3, "num_anchors": 0, "temperature": 30, "similarity": "cosine"},
        {"from_epoch": 5, "num_iters": 1},
    ]
    loss = build_loss({"group": {"preset": "authors", "phases": phases}}, 5).terms["group"]
    seen = {}
    for epoch in (0, 1, 2, 3, 4, 5, 0):  # the last: a run restarted from the beginning gets the base options
        loss.set_epoch(epoch)
        seen[epoch] = (loss.num_anchors, loss.temperature, loss.similarity, loss.num_iters)
    assert seen[0] == seen[1] == (3, 80.0, "pearson", 2)
    assert seen[2] == seen[3] == (0, 30.0, "cosine", 2)
    assert seen[4] == seen[5] == (0, 30.0, "cosine", 1)
    # the value in a phase equals a loss built with those options directly
    emb, logits, labels = batch(5)
    loss.set_epoch(2)
    direct = GroupLoss(5, temperature=30, num_anchors=0, similarity="cosine")
    torch.testing.assert_close(loss(emb, logits, labels), direct(emb, logits, labels))


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        ({"from_epoch": 3}, "phases must be a list"),
        ([{"num_anchors": 0}], r"phases\[0\].from_epoch must be a 1-based epoch >= 2"),
        ([{"from_epoch": 4}, {"from_epoch": 4, "num_iters": 1}], "increasing from_epoch"),
        ([{"from_epoch": 4, "label_smoothing": 0.0}], r"unknown option 'label_smoothing'"),
        ([{"from_epoch": 4, "temperature": -1}], r"phases\[0\]: Group Loss temperature must be a positive"),
    ],
)
def test_bad_phases_are_config_errors_naming_the_phase(phases, message):
    from reid.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        build_loss({"group": {"phases": phases}}, 5)
