"""Group Loss against a slow float64 loop reference, plus invariances, edge cases and errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reid.losses import GroupLoss, random_anchor_mask


def ref_similarity(emb: torch.Tensor, kind: str) -> list[list[torch.Tensor]]:
    """w_ij by the definition, one pair at a time (no clipping, no diagonal rule)."""
    n = emb.shape[0]
    rows = [emb[i] - emb[i].mean() if kind == "pearson" else emb[i] for i in range(n)]
    return [[torch.dot(rows[i], rows[j]) / (rows[i].norm() * rows[j].norm()) for j in range(n)] for i in range(n)]


def ref_group_loss(
    emb,
    logits,
    labels,
    anchors,
    m,
    tau=80.0,
    iters=2,
    kind="pearson",
    zero_diag=False,
    ce_weight=1.0,
    smooth=0.1,
    reduction="all",
    eps=1e-12,
):
    """docs/method.md section 1 with explicit loops over samples and classes (float64 autograd-able)."""
    n = emb.shape[0]
    sim = ref_similarity(emb, kind)
    zero = emb.new_zeros(())
    w = [
        [(zero if zero_diag else zero + 1.0) if i == j else torch.clamp(sim[i][j], min=0.0) for j in range(n)]
        for i in range(n)
    ]
    x = []
    for i in range(n):
        if anchors[i]:
            x.append([zero + (1.0 if k == int(labels[i]) else 0.0) for k in range(m)])
        else:
            exps = [torch.exp(logits[i, k] / tau) for k in range(m)]
            total = sum(exps)
            x.append([e / total for e in exps])
    for _ in range(iters):
        new = []
        for i in range(n):
            numer = [x[i][k] * sum(w[i][j] * x[j][k] for j in range(n)) for k in range(m)]
            mass = sum(numer)
            new.append([v / mass for v in numer] if float(mass.detach()) > eps else x[i])
        x = new
    terms = [-torch.log(x[i][int(labels[i])] + 1e-12) for i in range(n)]
    keep = [i for i in range(n) if reduction == "all" or not anchors[i]]
    nll = sum(terms[i] for i in keep) / len(keep) if keep else zero
    ce = zero
    for i in range(n):
        logp = [logits[i, k] - torch.logsumexp(logits[i], 0) for k in range(m)]
        ce = ce - (1 - smooth) * logp[int(labels[i])] - smooth / m * sum(logp)
    return nll + ce_weight * ce / n


def make_batch(p=4, k=3, d=6, m=7, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randperm(m, generator=gen)[:p].repeat_interleave(k)
    centres = torch.randn(m, d, generator=gen, dtype=dtype)
    emb = centres[labels] + 0.7 * torch.randn(p * k, d, generator=gen, dtype=dtype)
    logits = 3.0 * torch.randn(p * k, m, generator=gen, dtype=dtype)
    return emb, logits, labels


OPTION_SETS = [
    {},
    {"similarity": "cosine"},
    {"zero_diagonal": True},
    {"num_iters": 3, "temperature": 5.0, "reduction": "non_anchors"},
    {"num_iters": 1, "ce_weight": 0.0, "label_smoothing": 0.0, "similarity": "cosine", "zero_diagonal": True},
]


@pytest.mark.parametrize("options", OPTION_SETS)
def test_value_and_gradients_match_loop_reference(options):
    emb, logits, labels = make_batch(seed=1)
    anchors = random_anchor_mask(labels, 1, torch.Generator().manual_seed(3))
    ref_kwargs = {
        "tau": options.get("temperature", 80.0),
        "iters": options.get("num_iters", 2),
        "kind": options.get("similarity", "pearson"),
        "zero_diag": options.get("zero_diagonal", False),
        "ce_weight": options.get("ce_weight", 1.0),
        "smooth": options.get("label_smoothing", 0.1),
        "reduction": options.get("reduction", "all"),
    }
    loss = GroupLoss(7, num_anchors=1, **options)
    e1, z1 = emb.clone().requires_grad_(), logits.clone().requires_grad_()
    ours = loss(e1, z1, labels, anchor_mask=anchors)
    ours.backward()
    e2, z2 = emb.clone().requires_grad_(), logits.clone().requires_grad_()
    ref = ref_group_loss(e2, z2, labels, anchors.tolist(), 7, **ref_kwargs)
    ref.backward()
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(e1.grad, e2.grad, rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(z1.grad, z2.grad, rtol=1e-8, atol=1e-12)
    assert e1.grad.abs().sum() > 0  # gradients reach the embeddings through W


def test_float32_matches_float64_reference():
    emb, logits, labels = make_batch(p=5, k=4, d=16, m=9, seed=2)
    anchors = random_anchor_mask(labels, 3, torch.Generator().manual_seed(0))
    ours = GroupLoss(9)(emb.float(), logits.float(), labels, anchor_mask=anchors)
    ref = ref_group_loss(emb, logits, labels, anchors.tolist(), 9)
    assert ours.dtype == torch.float32
    assert abs(float(ours.detach()) - float(ref.detach())) < 1e-5


@pytest.mark.parametrize("options", [{}, {"zero_diagonal": True, "similarity": "cosine", "num_iters": 3}])
def test_gradcheck_with_fixed_anchors(options):
    emb, logits, labels = make_batch(p=3, k=3, d=5, m=5, seed=4)
    anchors = torch.tensor([True, False, False, False, True, False, False, False, False])
    loss = GroupLoss(5, temperature=4.0, **options)
    emb.requires_grad_()
    logits.requires_grad_()
    assert torch.autograd.gradcheck(lambda e, z: loss(e, z, labels, anchor_mask=anchors), (emb, logits), fast_mode=True)


def test_permuting_the_batch_leaves_the_loss_unchanged():
    emb, logits, labels = make_batch(p=4, k=4, d=8, m=10, seed=5)
    anchors = random_anchor_mask(labels, 2, torch.Generator().manual_seed(1))
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(9))
    for options in ({}, {"zero_diagonal": True, "reduction": "non_anchors"}):
        loss = GroupLoss(10, **options)
        a = loss(emb, logits, labels, anchor_mask=anchors)
        b = loss(emb[perm], logits[perm], labels[perm], anchor_mask=anchors[perm])
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_pearson_is_invariant_to_shifting_and_positively_scaling_a_feature_vector():
    emb, logits, labels = make_batch(p=4, k=3, d=8, m=7, seed=6)
    anchors = random_anchor_mask(labels, 1, torch.Generator().manual_seed(2))
    moved = emb.clone()
    moved[0] = 250.0 * moved[0] - 17.0
    moved[5] = 0.01 * moved[5] + 3.0
    loss = GroupLoss(7)
    torch.testing.assert_close(
        loss(emb, logits, labels, anchor_mask=anchors),
        loss(moved, logits, labels, anchor_mask=anchors),
        rtol=1e-10,
        atol=1e-12,
    )
    cosine = GroupLoss(7, similarity="cosine")
    scaled = emb.clone()
    scaled[2] = 40.0 * scaled[2]
    torch.testing.assert_close(
        cosine(emb, logits, labels, anchor_mask=anchors),
        cosine(scaled, logits, labels, anchor_mask=anchors),
        rtol=1e-10,
        atol=1e-12,
    )
    # a shift does change cosine similarity, so this is a real check of the Pearson centring
    assert not torch.allclose(
        cosine(emb, logits, labels, anchor_mask=anchors), cosine(moved, logits, labels, anchor_mask=anchors)
    )


def test_random_anchor_mask_picks_min_k_count_per_identity_reproducibly():
    labels = torch.tensor([3, 3, 3, 3, 3, 1, 1, 8, 0, 0, 0, 0])
    for k in (0, 1, 2, 3, 6):
        mask = random_anchor_mask(labels, k, torch.Generator().manual_seed(11))
        for ident in labels.unique().tolist():
            count = int((labels == ident).sum())
            assert int(mask[labels == ident].sum()) == min(k, count)
        again = random_anchor_mask(labels, k, torch.Generator().manual_seed(11))
        assert torch.equal(mask, again)
    seen = {tuple(random_anchor_mask(labels, 1, torch.Generator().manual_seed(s)).tolist()) for s in range(20)}
    assert len(seen) > 1  # the choice is random, not always the first sample


def test_generator_makes_the_loss_reproducible():
    emb, logits, labels = make_batch(p=4, k=4, d=8, m=10, seed=7)
    loss = GroupLoss(10, num_anchors=1)
    a = loss(emb, logits, labels, generator=torch.Generator().manual_seed(5))
    b = loss(emb, logits, labels, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def _finite_loss_and_grads(loss, emb, logits, labels, **kwargs):
    emb = emb.clone().requires_grad_()
    logits = logits.clone().requires_grad_()
    value = loss(emb, logits, labels, **kwargs)
    value.backward()
    return (
        bool(torch.isfinite(value)) and bool(torch.isfinite(emb.grad).all()) and bool(torch.isfinite(logits.grad).all())
    )


EDGE_OPTIONS = [
    {},
    {"zero_diagonal": True},
    {"similarity": "cosine", "zero_diagonal": True},
    {"reduction": "non_anchors", "zero_diagonal": True, "num_iters": 3},
]


@pytest.mark.parametrize("options", EDGE_OPTIONS)
def test_degenerate_inputs_never_give_nan_or_inf(options):
    n, d, m = 12, 32, 6
    labels = torch.arange(n) % 4
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(n, m, generator=gen)
    loss = GroupLoss(m, **options)
    cases = {
        "constant": torch.full((n, d), 0.1),
        "zero": torch.zeros(n, d),
        "huge": 1e6 * torch.randn(n, d, generator=gen),
        "tiny": 1e-30 * torch.randn(n, d, generator=gen),
        "duplicates": torch.randn(1, d, generator=gen).repeat(n, 1),
    }
    for name, emb in cases.items():
        assert _finite_loss_and_grads(loss, emb, logits, labels), name
        assert _finite_loss_and_grads(loss, emb, 1e6 * logits, labels), name + " with huge logits"
    emb = torch.randn(n, d, generator=gen)
    assert _finite_loss_and_grads(loss, emb, logits, labels, anchor_mask=torch.ones(n, dtype=torch.bool))
    k1 = torch.arange(n) % m  # K = 1 for most identities: every lone sample is its identity's anchor
    assert _finite_loss_and_grads(GroupLoss(m, num_anchors=3, **options), emb, logits, k1)
    all_distinct = torch.randperm(m, generator=gen)
    assert _finite_loss_and_grads(loss, emb[:m], logits[:m], all_distinct)


def test_every_sample_an_anchor_gives_only_the_cross_entropy():
    emb, logits, labels = make_batch(p=3, k=2, d=5, m=6, seed=8)
    anchors = torch.ones(len(labels), dtype=torch.bool)
    loss = GroupLoss(6, zero_diagonal=True)
    nll, ce = loss.terms(emb, logits, labels, anchor_mask=anchors)
    assert abs(float(nll.detach())) < 1e-9
    assert float(GroupLoss(6, reduction="non_anchors").terms(emb, logits, labels, anchor_mask=anchors)[0]) == 0.0
    torch.testing.assert_close(ce, F.cross_entropy(logits, labels, label_smoothing=0.1))


def test_zero_diagonal_row_without_neighbours_keeps_its_prior():
    emb, logits, labels = make_batch(p=3, k=3, d=6, m=5, seed=10)
    emb[4] = 2.5  # a constant vector: Pearson similarity 0 to everything
    anchors = torch.zeros(len(labels), dtype=torch.bool)
    anchors[0] = True
    loss = GroupLoss(5, zero_diagonal=True, temperature=3.0)
    probs = loss.propagate(emb, logits, labels, anchors)
    torch.testing.assert_close(probs[4], F.softmax(logits[4] / 3.0, dim=0))
    kept = GroupLoss(5, temperature=3.0).propagate(emb, logits, labels, anchors)
    prior = F.softmax(logits[4] / 3.0, dim=0)
    torch.testing.assert_close(kept[4], (prior**4) / (prior**4).sum())  # w_44 = 1: x <- x^2 twice


@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16])
def test_autocast_computes_in_float32(low):
    """Under CPU autocast (bf16, and fp16 where this torch supports it) W, X and the log stay float32."""
    gen = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(16, 32)
    inputs = torch.randn(12, 16, generator=gen)
    logits = torch.randn(12, 6, generator=gen)
    labels = torch.arange(12) % 3
    anchors = random_anchor_mask(labels, 1, torch.Generator().manual_seed(0))
    loss = GroupLoss(6)
    try:
        with torch.autocast("cpu", dtype=low):
            emb = layer(inputs)
    except RuntimeError as err:  # pragma: no cover - depends on the CPU build
        pytest.skip(f"CPU autocast with {low} unsupported here: {err}")
    with torch.autocast("cpu", dtype=low):
        emb = layer(inputs)
        assert emb.dtype == low
        value = loss(emb, logits.to(low), labels, anchor_mask=anchors)
    assert value.dtype == torch.float32
    expected = loss(emb.float(), logits.to(low).float(), labels, anchor_mask=anchors)
    torch.testing.assert_close(value, expected)
    value.backward()
    assert torch.isfinite(layer.weight.grad).all()
    plain = loss(emb.detach(), logits.to(low), labels, anchor_mask=anchors)  # low-precision inputs, no autocast
    assert plain.dtype == torch.float32 and torch.isfinite(plain)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "num_classes >= 2"),
        ({"num_classes": 5, "temperature": 0.0}, "temperature"),
        ({"num_classes": 5, "num_anchors": -1}, "num_anchors"),
        ({"num_classes": 5, "num_iters": 1.5}, "num_iters"),
        ({"num_classes": 5, "similarity": "euclid"}, "similarity"),
        ({"num_classes": 5, "reduction": "sum"}, "reduction"),
        ({"num_classes": 5, "ce_weight": -1.0}, "ce_weight"),
        ({"num_classes": 5, "label_smoothing": 1.0}, "label smoothing"),
    ],
)
def test_bad_options_raise_when_built(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GroupLoss(**kwargs)


def test_unusable_batches_raise_clear_errors():
    loss = GroupLoss(5)
    emb, logits = torch.randn(6, 4), torch.randn(6, 5)
    with pytest.raises(ValueError, match="at least two identities"):
        loss(emb, logits, torch.full((6,), 2))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        loss(emb, logits, torch.tensor([0, 1, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        loss(emb, logits, torch.tensor([0, 1, -1, 3, 4, 2]))
    with pytest.raises(ValueError, match="num_classes is 5"):
        loss(emb, torch.randn(6, 7), torch.arange(6) % 2)
    with pytest.raises(ValueError, match="batch sizes differ"):
        loss(emb[:5], logits, torch.arange(6) % 2)
    with pytest.raises(ValueError, match="anchor_mask"):
        loss(emb, logits, torch.arange(6) % 2, anchor_mask=torch.ones(5, dtype=torch.bool))


def test_loss_decreases_when_same_identity_embeddings_agree():
    """Sanity of direction: features clustered by identity give a lower propagation loss than random ones."""
    gen = torch.Generator().manual_seed(3)
    labels = torch.arange(4).repeat_interleave(4)
    logits = torch.zeros(16, 4)
    anchors = random_anchor_mask(labels, 1, torch.Generator().manual_seed(0))
    clustered = F.one_hot(labels, 8).double() * 5 + 0.1 * torch.randn(16, 8, generator=gen, dtype=torch.float64)
    noise = torch.randn(16, 8, generator=gen, dtype=torch.float64)
    loss = GroupLoss(4, ce_weight=0.0)
    good, bad = loss(clustered, logits, labels, anchor_mask=anchors), loss(noise, logits, labels, anchor_mask=anchors)
    assert float(good.detach()) < float(bad.detach())
