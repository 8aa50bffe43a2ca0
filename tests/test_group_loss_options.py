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
