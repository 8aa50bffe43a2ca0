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
