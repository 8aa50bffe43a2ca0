"""build_loss / CombinedLoss: routing of inputs, weights, parts, and ConfigError on bad specs."""

from __future__ import annotations

import pytest
import torch

from reid.errors import ConfigError
from reid.losses import (
    CenterLoss,
    CombinedLoss,
    CrossEntropyLabelSmooth,
    GroupLoss,
    RankedListLoss,
    TripletLoss,
    build_loss,
)
from reid.losses.group_presets import GROUP_PRESETS


def batch(n=12, d=16, m=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen), torch.randn(n, m, generator=gen), torch.arange(n) % 4


def test_total_is_the_weighted_sum_of_independently_computed_terms():
    emb, logits, labels = batch()
    spec = {
        "group": {"weight": 0.5, "preset": "authors", "temperature": 10, "num_anchors": 1},
        "triplet": {"weight": 2.0, "margin": 0.5},
        "ce": {"weight": 0.25, "epsilon": 0.2},
        "ranked_list": {"query_weighting": True},
        "center": {"weight": 0.001, "feat_dim": 16},
    }
    combined = build_loss(spec, num_classes=6)
    assert isinstance(combined, CombinedLoss)
    torch.manual_seed(4)  # the group term draws its anchors from the global RNG
    total, parts = combined(emb, logits, labels)
    torch.manual_seed(4)
    group = GroupLoss(6, temperature=10, num_anchors=1)(emb, logits, labels)
    triplet = TripletLoss(margin=0.5)(emb, labels)
    ce = CrossEntropyLabelSmooth(0.2)(logits, labels)
    rll = RankedListLoss(query_weighting=True)(emb, labels)
    center = combined.terms["center"](emb, labels)
    expected = 0.5 * group + 2.0 * triplet + 0.25 * ce + rll + 0.001 * center
    torch.testing.assert_close(total, expected)
    for name, value in {"group": group, "triplet": triplet, "ce": ce, "ranked_list": rll, "center": center}.items():
        assert parts[name] == pytest.approx(float(value.detach()), rel=1e-6)
    assert parts["group"] == pytest.approx(parts["group.nll"] + parts["group.ce"], rel=1e-6)
    assert all(isinstance(v, float) for v in parts.values())


def test_each_term_gets_only_the_inputs_it_uses():
    emb, logits, labels = batch()
    emb.requires_grad_()
    logits.requires_grad_()
    build_loss({"triplet": {}}, 6)(emb, logits, labels)[0].backward()
    assert emb.grad is not None and logits.grad is None
    emb.grad = None
    build_loss({"ce": {}}, 6)(emb, logits, labels)[0].backward()
    assert emb.grad is None and logits.grad is not None
    logits.grad = None
    build_loss({"group": {"ce_weight": 0.0}}, 6)(emb, logits, labels)[0].backward()
    assert emb.grad is not None and logits.grad is not None
    # a metric-only combination works without logits; a logit loss without them says which one
    total, _ = build_loss({"triplet": {}, "ranked_list": {}}, 6)(emb, None, labels)
    assert torch.isfinite(total)
    with pytest.raises(ValueError, match="'group' needs logits"):
        build_loss({"group": {}}, 6)(emb, None, labels)


def test_defaults_and_none_options():
    combined = build_loss({"ce": None, "group": {}}, 751)
    assert combined.weights == {"ce": 1.0, "group": 1.0}
    group = combined.terms["group"]  # `group: {}` is the recommended preset
    recommended = GROUP_PRESETS["recommended"]
    for key, value in recommended.items():
        if key != "label_smoothing":
            assert getattr(group, key) == value, key
    assert group.ce.epsilon == recommended["label_smoothing"]
    authors = build_loss({"group": {"preset": "authors"}}, 751).terms["group"]
    assert (authors.temperature, authors.num_anchors, authors.num_iters, authors.similarity) == (80.0, 3, 2, "pearson")
    assert (authors.ce_weight, authors.ce.epsilon, authors.reduction, authors.zero_diagonal) == (1.0, 0.1, "all", False)
    assert (authors.detach_similarity, authors.propagation_weight) == (False, 1.0)
    # the preset is exactly GroupLoss's own (authors') defaults, and keys given beside a preset override it
    plain = GroupLoss(751)
    assert authors.extra_repr() == plain.extra_repr()
    assert build_loss({"group": {"preset": "authors", "temperature": 20}}, 751).terms["group"].temperature == 20.0
    assert isinstance(build_loss({"center": {}}, 751).terms["center"], CenterLoss)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"arcface": {}}, r"loss\.arcface: unknown loss"),
        ({"group": {"temprature": 80}}, r"loss\.group\.temprature: unknown option"),
        (
            {"group": {"preset": "paper"}},
            r"loss\.group\.preset: unknown preset 'paper' \(choose from authors, recommended\)",
        ),
        ({"triplet": {"margin": 0.3, "soft": True}}, r"loss\.triplet\.soft: unknown option"),
        ({"ce": {"weight": -1}}, r"loss\.ce\.weight"),
        ({"ce": {"weight": "1"}}, r"loss\.ce\.weight"),
        ({"group": {"similarity": "l2"}}, r"loss\.group: .*similarity"),
        ({"ranked_list": {"margin": 2.0}}, r"loss\.ranked_list: .*margin"),
        ({"ce": {"epsilon": 1.5}}, r"loss\.ce: label smoothing"),
        ({"triplet": [0.3]}, r"loss\.triplet: expected a mapping"),
        ({}, r"loss: expected a non-empty mapping"),
    ],
)
def test_bad_specs_raise_config_error_naming_the_key(spec, message):
    with pytest.raises(ConfigError, match=message):
        build_loss(spec, num_classes=751)


def test_too_few_classes_is_a_config_error():
    with pytest.raises(ConfigError, match=r"loss\.group: .*num_classes >= 2"):
        build_loss({"group": {}}, num_classes=1)
