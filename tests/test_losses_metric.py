"""Ranked list, batch-hard triplet, centre loss and label-smoothed CE against float64 loop references."""

from __future__ import annotations

import math

import pytest
import torch

from reid.losses import CenterLoss, CrossEntropyLabelSmooth, RankedListLoss, TripletLoss


def make_batch(p=4, k=3, d=6, seed=0, spread=0.6):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(p).repeat_interleave(k)
    centres = torch.randn(p, d, generator=gen, dtype=torch.float64)
    emb = centres[labels] + spread * torch.randn(p * k, d, generator=gen, dtype=torch.float64)
    return emb, labels


# ---------------------------------------------------------------- ranked list loss


def ref_ranked_list(emb, labels, margin=0.4, alpha=1.2, tn=10.0, tp=0.0, lam=1.0, query_weighting=False, detach=True):
    """docs/method.md section 2 with loops; `detach` makes the exp weights plain Python floats (constants)."""
    n = emb.shape[0]
    unit = [emb[i] / emb[i].norm() for i in range(n)]
    losses, weight_sums = [], []
    for i in range(n):
        pos, neg = [], []
        for j in range(n):
            if j == i:
                continue
            dist = (unit[i] - unit[j]).norm()
            plain = float(dist.detach())
            if labels[i] == labels[j] and plain > alpha - margin:
                value = dist - (alpha - margin)
                pos.append((value, math.exp(tp * float(value.detach())) if detach else torch.exp(tp * value)))
            elif labels[i] != labels[j] and plain < alpha:
                value = alpha - dist
                neg.append((value, math.exp(tn * float(value.detach())) if detach else torch.exp(tn * value)))
        lp = sum(w * v for v, w in pos) / sum(w for _, w in pos) if pos else 0.0
        ln = sum(w * v for v, w in neg) / sum(w for _, w in neg) if neg else 0.0
        losses.append(lp + lam * ln)
        weight_sums.append(sum(float(w.detach()) if torch.is_tensor(w) else w for _, w in pos + neg))
    if not query_weighting:
        return sum(losses) / n
    total = sum(weight_sums)
    return sum(s / total * loss for s, loss in zip(weight_sums, losses)) if total > 0 else emb.sum() * 0.0


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"query_weighting": True},
        {"temperature_pos": 3.0, "lam": 0.5, "margin": 0.2, "alpha": 1.0},
        {"detach_weights": False},
        {"detach_weights": False, "query_weighting": True, "temperature_pos": 2.0},
    ],
)
def test_ranked_list_matches_loop_reference(options):
    emb, labels = make_batch(p=4, k=3, d=5, seed=1, spread=0.9)
    ref_kw = {
        "margin": options.get("margin", 0.4),
        "alpha": options.get("alpha", 1.2),
        "tp": options.get("temperature_pos", 0.0),
        "lam": options.get("lam", 1.0),
        "query_weighting": options.get("query_weighting", False),
        "detach": options.get("detach_weights", True),
    }
    e1, e2 = emb.clone().requires_grad_(), emb.clone().requires_grad_()
    ours = RankedListLoss(**options)(e1, labels)
    ref = ref_ranked_list(e2, labels, **ref_kw)
    ours.backward()
    ref.backward()
    assert float(ours.detach()) > 0
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(e1.grad, e2.grad, rtol=1e-8, atol=1e-12)


def test_ranked_list_gradcheck():
    emb, labels = make_batch(p=3, k=3, d=4, seed=2, spread=0.9)
    emb.requires_grad_()
    for loss in (RankedListLoss(detach_weights=False), RankedListLoss(temperature_neg=0.0, query_weighting=True)):
        assert torch.autograd.gradcheck(lambda e, fn=loss: fn(e, labels), (emb,), fast_mode=True)


def test_ranked_list_huge_temperature_does_not_overflow():
    emb, labels = make_batch(p=4, k=3, d=5, seed=3, spread=0.9)
    value = RankedListLoss(temperature_neg=500.0, query_weighting=True)(emb.float(), labels)
    assert torch.isfinite(value)
    # with a huge temperature the weighted mean tends to the most violating negative's violation
    assert float(value.detach()) > 0


def test_ranked_list_without_violations_is_zero_with_finite_gradients():
    labels = torch.arange(4).repeat_interleave(3)
    emb = torch.nn.functional.one_hot(labels, 6).float().requires_grad_()  # same id: d = 0, other ids: d = sqrt 2
    for loss in (RankedListLoss(), RankedListLoss(query_weighting=True)):
        value = loss(emb, labels)
        value.backward()
        assert float(value.detach()) == 0.0
        assert torch.isfinite(emb.grad).all()
        emb.grad = None


# ---------------------------------------------------------------- triplet loss


def ref_triplet(emb, labels, margin=0.3, soft=False, normalize=False):
    n = emb.shape[0]
    rows = [emb[i] / emb[i].norm() if normalize else emb[i] for i in range(n)]
    terms = []
    for i in range(n):
        pos = [(rows[i] - rows[j]).norm() for j in range(n) if j != i and labels[j] == labels[i]]
        neg = [(rows[i] - rows[j]).norm() for j in range(n) if labels[j] != labels[i]]
        if not pos or not neg:
            continue
        hardest_pos = max(pos, key=lambda t: float(t.detach()))
        hardest_neg = min(neg, key=lambda t: float(t.detach()))
        gap = hardest_pos - hardest_neg
        terms.append(torch.log1p(torch.exp(gap)) if soft else torch.clamp(gap + margin, min=0.0))
    return sum(terms) / len(terms) if terms else emb.sum() * 0.0


@pytest.mark.parametrize("options", [{}, {"margin": 1.0}, {"soft_margin": True}, {"normalize": True, "margin": 0.1}])
def test_triplet_matches_loop_reference(options):
    emb, labels = make_batch(p=4, k=3, d=5, seed=4, spread=1.0)
    labels = torch.cat([labels, torch.tensor([9])])  # a lone identity: an anchor without positive
    emb = torch.cat([emb, torch.randn(1, 5, dtype=torch.float64)])
    e1, e2 = emb.clone().requires_grad_(), emb.clone().requires_grad_()
    ours = TripletLoss(**options)(e1, labels)
    ref = ref_triplet(
        e2, labels, options.get("margin", 0.3), options.get("soft_margin", False), options.get("normalize", False)
    )
    ours.backward()
    ref.backward()
    assert float(ours.detach()) > 0
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(e1.grad, e2.grad, rtol=1e-8, atol=1e-12)


def test_triplet_soft_margin_gradcheck():
    emb, labels = make_batch(p=3, k=3, d=4, seed=5, spread=1.0)
    emb.requires_grad_()
    assert torch.autograd.gradcheck(lambda e: TripletLoss(soft_margin=True)(e, labels), (emb,), fast_mode=True)


def test_triplet_without_negatives_or_positives_is_zero():
    emb = torch.randn(5, 4, requires_grad=True)
    for labels in (torch.zeros(5, dtype=torch.long), torch.arange(5)):
        value = TripletLoss()(emb, labels)
        value.backward()
        assert float(value.detach()) == 0.0 and torch.isfinite(emb.grad).all()


# ---------------------------------------------------------------- shared properties


METRIC_LOSSES = [
    TripletLoss(),
    TripletLoss(soft_margin=True, normalize=True),
    RankedListLoss(),
    RankedListLoss(query_weighting=True, detach_weights=False),
]


@pytest.mark.parametrize("loss", METRIC_LOSSES)
def test_metric_losses_are_permutation_invariant(loss):
    emb, labels = make_batch(p=4, k=4, d=8, seed=6, spread=1.0)
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(loss(emb, labels), loss(emb[perm], labels[perm]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss", METRIC_LOSSES)
def test_metric_losses_never_give_nan_or_inf(loss):
    n, d = 12, 32
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 4
    cases = {
        "constant": torch.full((n, d), 0.1),
        "zero": torch.zeros(n, d),
        "huge": 1e6 * torch.randn(n, d, generator=gen),
        "tiny": 1e-30 * torch.randn(n, d, generator=gen),
        "duplicates": torch.randn(1, d, generator=gen).repeat(n, 1),
    }
    for name, emb in cases.items():
        for lab in (labels, torch.zeros(n, dtype=torch.long), torch.arange(n)):
            emb_ = emb.clone().requires_grad_()
            value = loss(emb_, lab)
            value.backward()
            assert torch.isfinite(value) and torch.isfinite(emb_.grad).all(), name


def test_metric_losses_compute_in_float32_under_bf16_autocast():
    gen = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(8, 16)
    inputs = torch.randn(12, 8, generator=gen)
    labels = torch.arange(12) % 3
    for loss in (TripletLoss(), RankedListLoss(), CenterLoss(3, 16)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            emb = layer(inputs)
            value = loss(emb, labels)
        assert emb.dtype == torch.bfloat16 and value.dtype == torch.float32
        torch.testing.assert_close(value, loss(emb.float(), labels))


def test_metric_losses_reject_bad_input():
    with pytest.raises(ValueError, match="embeddings \\(n, d\\) and labels \\(n,\\)"):
        TripletLoss()(torch.randn(4, 3), torch.arange(5))
    with pytest.raises(ValueError, match="labels must be integer"):
        RankedListLoss()(torch.randn(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="margin"):
        TripletLoss(margin=-0.1)
    with pytest.raises(ValueError, match="margin <= alpha"):
        RankedListLoss(margin=1.5, alpha=1.2)
    with pytest.raises(ValueError, match="temperature_neg"):
        RankedListLoss(temperature_neg=-1.0)


# ---------------------------------------------------------------- centre loss and cross-entropy


def test_center_loss_matches_loop_reference_and_trains_its_centres():
    gen = torch.Generator().manual_seed(7)
    loss = CenterLoss(5, 4, generator=gen).double()
    emb = torch.randn(6, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 4, 4, 2, 1, 0])
    value = loss(emb, labels)
    ref = sum(float(((emb[i] - loss.centers[labels[i]]) ** 2).sum().detach()) for i in range(6)) / 6
    assert abs(float(value.detach()) - ref) < 1e-12
    value.backward()
    torch.testing.assert_close(emb.grad, 2 * (emb - loss.centers[labels]).detach() / 6)
    assert float(loss.centers.grad[3].abs().sum()) == 0.0  # an absent class's centre does not move
    assert float(loss.centers.grad[4].abs().sum()) > 0.0
    with pytest.raises(ValueError, match="labels must lie in"):
        loss(emb, torch.tensor([0, 1, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match="width 4"):
        loss(torch.randn(6, 3, dtype=torch.float64), labels)


def test_cross_entropy_label_smooth_matches_loop_reference():
    gen = torch.Generator().manual_seed(8)
    logits = 4 * torch.randn(7, 5, generator=gen, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3, 4, 4, 1])
    for eps in (0.0, 0.1, 0.5):
        ref = 0.0
        for i in range(7):
            log_z = math.log(sum(math.exp(float(v)) for v in logits[i]))
            for k in range(5):
                target = (1 - eps) * (k == int(labels[i])) + eps / 5
                ref -= target * (float(logits[i, k]) - log_z)
        value = CrossEntropyLabelSmooth(eps, num_classes=5)(logits, labels)
        assert abs(float(value.detach()) - ref / 7) < 1e-12
    with pytest.raises(ValueError, match="num_classes is 6"):
        CrossEntropyLabelSmooth(0.1, num_classes=6)(logits, labels)
