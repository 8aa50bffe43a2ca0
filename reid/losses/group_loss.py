"""The Group Loss (Elezi et al., ECCV 2020): label propagation by replicator dynamics.

See docs/method.md section 1. Shapes: embeddings (n, d), logits (n, m), labels (n,) int64 in [0, m).

Numerical policy (why nothing here can produce NaN or inf):
- similarities are computed on rows rescaled by their largest absolute entry, so 1e6-sized or
  1e-30-sized features give the same W as unit-sized ones; a row whose centred (Pearson) or raw
  (cosine) vector is numerically zero has no similarity to anything (its W row is 0 off the diagonal);
- the diagonal is set to exactly 1 when kept (authors' code), so every W row is non-zero;
- each replicator step keeps a row of X unchanged when its new mass sum(x_i * (W x)_i) is <= eps
  (this only happens with zero_diagonal, e.g. an isolated sample or an anchor whose neighbours all
  carry other labels), instead of dividing 0 by 0;
- the log has the method notes' +1e-12.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import at_least_float32
from .cross_entropy import CrossEntropyLabelSmooth

SIMILARITIES = ("pearson", "cosine")
REDUCTIONS = ("all", "non_anchors")
# which training output W is built from: the pooled backbone features (authors) or the BNNeck output
W_FEATURES = ("pooled", "bnneck")
# options a Group Loss++ phase (`phases`) may change from its 1-based `from_epoch` on
PHASE_KEYS = ("temperature", "num_anchors", "num_iters", "similarity", "propagation_weight", "detach_similarity")
# a centred/raw row whose norm is below this fraction of sqrt(d) (after rescaling to max |f| = 1) is "zero":
# float32 rounding of the mean leaves ~1e-7 per entry on a constant row, real features are far above it.
_REL_ZERO = 1e-5


def _unit_rows(rows: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm; rows that are numerically zero become exactly zero. (n, d) -> (n, d)."""
    norm = rows.norm(dim=1, keepdim=True)
    is_zero = norm <= _REL_ZERO * rows.shape[1] ** 0.5
    return torch.where(is_zero, torch.zeros_like(rows), rows / torch.where(is_zero, torch.ones_like(norm), norm))


def _rescale_rows(embeddings: torch.Tensor) -> torch.Tensor:
    """Divide each row by its largest absolute entry (scale-free, avoids overflow); zero rows stay zero."""
    peak = embeddings.detach().abs().amax(dim=1, keepdim=True)
    return embeddings / torch.where(peak > 0, peak, torch.ones_like(peak))


def pearson_similarity(embeddings: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between rows, (n, d) -> (n, n) in [-1, 1].

    Each row is centred on its own mean over the d dimensions, then rows are compared by cosine.
    A constant row correlates 0 with everything (also with itself: callers set the diagonal).
    """
    rows = _rescale_rows(embeddings)
    unit = _unit_rows(rows - rows.mean(dim=1, keepdim=True))
    return unit @ unit.t()


def cosine_similarity_matrix(embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between rows, (n, d) -> (n, n); a zero row has similarity 0 to everything."""
    unit = _unit_rows(_rescale_rows(embeddings))
    return unit @ unit.t()


def random_anchor_mask(
    labels: torch.Tensor, num_anchors: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Boolean (n,) mask choosing min(num_anchors, count) random samples of each identity in `labels`.

    Vectorised: a random permutation gives every sample a distinct key; a sample is an anchor when fewer
    than `num_anchors` samples of its identity have a smaller key. The permutation is drawn on the CPU
    from `generator` (or the global RNG), so a seeded generator gives the same anchors on any device.
    """
    if num_anchors < 0:
        raise ValueError(f"num_anchors must be >= 0, got {num_anchors}")
    n = labels.numel()
    keys = torch.randperm(n, generator=generator).to(labels.device)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    rank = (same & (keys.unsqueeze(0) < keys.unsqueeze(1))).sum(dim=1)
    return rank < num_anchors


def replicator_dynamics(probs: torch.Tensor, weights: torch.Tensor, num_iters: int, eps: float) -> torch.Tensor:
    """T steps of X <- normalize_rows(X * (W @ X)); a row whose new mass is <= eps stays as it was.

    probs (n, m) non-negative rows summing to 1, weights (n, n) non-negative. Returns (n, m).
    """
    for _ in range(num_iters):
        numer = probs * (weights @ probs)
        mass = numer.sum(dim=1, keepdim=True)
        ok = mass > eps
        probs = torch.where(ok, numer / torch.where(ok, mass, torch.ones_like(mass)), probs)
    return probs


class GroupLoss(nn.Module):
    """Group Loss plus auxiliary label-smoothed cross-entropy; defaults are the authors' (docs/method.md section 1).

    Args:
        num_classes: m, the number of training identities (logits width), >= 2.
        temperature: tau of the prior softmax(z / tau) (authors: 80 on Market-1501).
        num_anchors: labelled samples per identity in the batch (fewer when an identity has fewer).
        num_iters: T replicator-dynamics steps (authors: 2 for re-ID, 1 for retrieval); 0 = prior only.
        similarity: "pearson" (authors) or "cosine"; negative similarities are clipped to 0.
        zero_diagonal: the paper's w_ii = 0 instead of the code's w_ii = 1; rows left without mass keep
            their previous X row (see `replicator_dynamics`).
        ce_weight: weight of CE(z, y) on the raw logits at temperature 1; 0 switches it off.
        label_smoothing: epsilon of that cross-entropy.
        reduction: "all" averages -log x_i[y_i] over all n samples, anchors included (authors);
            "non_anchors" only over the non-anchors (0 when every sample is an anchor).
        eps: mass threshold of the replicator fallback.
        detach_similarity: stop gradients through W (only the prior, i.e. the logits, learn from the
            propagation term); the authors let them flow.
        propagation_weight: weight of the propagation NLL relative to the cross-entropy (authors: 1).
        w_features: which training output CombinedLoss feeds in as `embeddings`: "pooled" (the pooled
            backbone features, authors) or "bnneck" (the BNNeck output, the test-time embedding, which the
            classifier also reads). The maths here is the same; only the tensor differs. L2-normalising the
            features first is no separate choice: Pearson and cosine W are invariant to scaling a row.
        phases: Group Loss++ schedule, e.g. [{"from_epoch": 50, "num_anchors": 0, "temperature": 30,
            "similarity": "cosine"}]: from that 1-based epoch on (see `set_epoch`), these options replace the
            ones above; later phases build on earlier ones. Keys: from_epoch and PHASE_KEYS.

    Batches must hold at least two identities (with one identity label propagation is trivial and the
    loss says nothing about separating people): such a batch raises ValueError, as do labels outside
    [0, num_classes) or shape mismatches. K = 1 (every sample its identity's only one) is legal: every
    sample is an anchor, the propagation term is ~0 and only the cross-entropy trains.
    """

    def __init__(
        self,
        num_classes: int,
        temperature: float = 80.0,
        num_anchors: int = 3,
        num_iters: int = 2,
        similarity: str = "pearson",
        zero_diagonal: bool = False,
        ce_weight: float = 1.0,
        label_smoothing: float = 0.1,
        reduction: str = "all",
        eps: float = 1e-12,
        detach_similarity: bool = False,
        propagation_weight: float = 1.0,
        w_features: str = "pooled",
        phases: list | None = None,
    ) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"Group Loss needs num_classes >= 2, got {num_classes!r}")
        if not temperature > 0 or temperature == float("inf"):
            raise ValueError(f"Group Loss temperature must be a positive finite number, got {temperature!r}")
        for name, value in (("num_anchors", num_anchors), ("num_iters", num_iters)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Group Loss {name} must be an integer >= 0, got {value!r}")
        if similarity not in SIMILARITIES:
            raise ValueError(f"Group Loss similarity must be one of {SIMILARITIES}, got {similarity!r}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"Group Loss reduction must be one of {REDUCTIONS}, got {reduction!r}")
        if w_features not in W_FEATURES:
            raise ValueError(f"Group Loss w_features must be one of {W_FEATURES}, got {w_features!r}")
        if not ce_weight >= 0:
            raise ValueError(f"Group Loss ce_weight must be >= 0, got {ce_weight!r}")
        if isinstance(propagation_weight, bool) or not propagation_weight >= 0:
            raise ValueError(f"Group Loss propagation_weight must be >= 0, got {propagation_weight!r}")
        if not 0 < eps < 1e-3:
            raise ValueError(f"Group Loss eps must be in (0, 1e-3), got {eps!r}")
        self.num_classes = num_classes
        self.temperature = float(temperature)
        self.num_anchors = num_anchors
        self.num_iters = num_iters
        self.similarity = similarity
        self.zero_diagonal = bool(zero_diagonal)
        self.ce_weight = float(ce_weight)
        self.reduction = reduction
        self.eps = float(eps)
        self.detach_similarity = bool(detach_similarity)
        self.propagation_weight = float(propagation_weight)
        self.w_features = w_features
        self.ce = CrossEntropyLabelSmooth(label_smoothing, num_classes=num_classes)
        self.base_options = {key: getattr(self, key) for key in PHASE_KEYS}
        self.phases = self._check_phases(phases)

    def _check_phases(self, phases: list | None) -> list[dict]:
        """Phases sorted by from_epoch; each phase's options are checked by building the loss with them."""
        if phases is None:
            return []
        if not isinstance(phases, (list, tuple)):
            raise ValueError(f"Group Loss phases must be a list of mappings, got {phases!r}")
        checked, options = [], dict(self.base_options)
        for i, phase in enumerate(phases):
            if not isinstance(phase, dict):
                raise ValueError(f"Group Loss phases[{i}] must be a mapping, got {phase!r}")
            start = phase.get("from_epoch")
            if isinstance(start, bool) or not isinstance(start, int) or start < 2:
                raise ValueError(f"Group Loss phases[{i}].from_epoch must be a 1-based epoch >= 2, got {start!r}")
            if checked and start <= checked[-1]["from_epoch"]:
                raise ValueError(f"Group Loss phases must have increasing from_epoch, got {start} after "
                                 f"{checked[-1]['from_epoch']}")  # fmt: skip
            unknown = sorted(set(phase) - {"from_epoch", *PHASE_KEYS})
            if unknown:
                raise ValueError(f"Group Loss phases[{i}]: unknown option {unknown[0]!r} (choose from from_epoch, "
                                 f"{', '.join(PHASE_KEYS)})")  # fmt: skip
            options.update({k: v for k, v in phase.items() if k != "from_epoch"})
            try:
                GroupLoss(self.num_classes, **options)
            except ValueError as err:
                raise ValueError(f"phases[{i}]: {err}") from None
            checked.append(dict(phase))
        return checked

    def set_epoch(self, epoch: int) -> None:
        """Apply the options of the phases that have started by `epoch` (0-based; the trainer calls this)."""
        options = dict(self.base_options)
        for phase in self.phases:
            if phase["from_epoch"] <= epoch + 1:
                options.update({k: v for k, v in phase.items() if k != "from_epoch"})
        for key, value in options.items():
            setattr(self, key, float(value) if key in ("temperature", "propagation_weight") else value)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, temperature={self.temperature}, num_anchors={self.num_anchors}, "
            f"num_iters={self.num_iters}, similarity={self.similarity!r}, zero_diagonal={self.zero_diagonal}, "
            f"ce_weight={self.ce_weight}, reduction={self.reduction!r}, detach_similarity={self.detach_similarity}, "
            f"propagation_weight={self.propagation_weight}, w_features={self.w_features!r}"
            + (f", phases={self.phases}" if self.phases else "")
        )

    def _check(self, embeddings: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        if embeddings.dim() != 2 or logits.dim() != 2 or labels.dim() != 1:
            raise ValueError(
                f"Group Loss expects embeddings (n, d), logits (n, m), labels (n,); got "
                f"{tuple(embeddings.shape)}, {tuple(logits.shape)}, {tuple(labels.shape)}"
            )
        n = labels.shape[0]
        if embeddings.shape[0] != n or logits.shape[0] != n:
            raise ValueError(
                f"Group Loss batch sizes differ: embeddings {embeddings.shape[0]}, logits {logits.shape[0]}, labels {n}"
            )
        if logits.shape[1] != self.num_classes:
            raise ValueError(f"Group Loss logits have {logits.shape[1]} columns, num_classes is {self.num_classes}")
        if labels.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"Group Loss labels must be integer class indices, got {labels.dtype}")
        if n == 0:
            raise ValueError("Group Loss got an empty batch")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= self.num_classes:
            raise ValueError(f"Group Loss labels must lie in [0, {self.num_classes}), got min {low} max {high}")
        if low == high:
            raise ValueError(f"Group Loss needs at least two identities in a batch, got only identity {low}")

    def similarity_matrix(self, embeddings: torch.Tensor) -> torch.Tensor:
        """W (n, n): clipped similarities with the diagonal set to 1 (default) or 0 (zero_diagonal)."""
        sim = pearson_similarity(embeddings) if self.similarity == "pearson" else cosine_similarity_matrix(embeddings)
        eye = torch.eye(sim.shape[0], dtype=torch.bool, device=sim.device)
        diag_value = 0.0 if self.zero_diagonal else 1.0
        return torch.where(eye, torch.full_like(sim, diag_value), F.relu(sim))

    def propagate(
        self, embeddings: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, anchor_mask: torch.Tensor
    ) -> torch.Tensor:
        """The refined assignment X (n, m) after T replicator steps, float32 (inputs already checked)."""
        weights = self.similarity_matrix(embeddings.detach() if self.detach_similarity else embeddings)
        probs = F.softmax(logits / self.temperature, dim=1)
        one_hot = F.one_hot(labels.long(), self.num_classes).to(probs.dtype)
        probs = torch.where(anchor_mask.unsqueeze(1), one_hot, probs)
        return replicator_dynamics(probs, weights, self.num_iters, self.eps)

    def terms(
        self,
        embeddings: torch.Tensor,
        logits: torch.Tensor,
        labels: torch.Tensor,
        anchor_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(propagation NLL, cross-entropy) as float32 scalars; loss = propagation_weight * nll + ce_weight * ce."""
        self._check(embeddings, logits, labels)
        labels = labels.long()
        if anchor_mask is None:
            anchor_mask = random_anchor_mask(labels, self.num_anchors, generator)
        elif anchor_mask.shape != labels.shape or anchor_mask.dtype != torch.bool:
            raise ValueError(f"anchor_mask must be a bool tensor of shape {tuple(labels.shape)}")
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            emb, z = at_least_float32(embeddings), at_least_float32(logits)
            dtype = torch.promote_types(emb.dtype, z.dtype)
            emb, z = emb.to(dtype), z.to(dtype)
            probs = self.propagate(emb, z, labels, anchor_mask)
            picked = probs.gather(1, labels.unsqueeze(1)).squeeze(1)
            per_sample = -torch.log(picked + 1e-12)
            if self.reduction == "all":
                nll = per_sample.mean()
            else:
                keep = (~anchor_mask).to(per_sample.dtype)
                nll = (per_sample * keep).sum() / keep.sum().clamp_min(1.0)
            ce = self.ce(z, labels) if self.ce_weight > 0 else z.sum() * 0.0
        return nll, ce

    def forward(
        self,
        embeddings: torch.Tensor,
        logits: torch.Tensor,
        labels: torch.Tensor,
        anchor_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Scalar float32 loss. anchor_mask (n,) bool fixes the anchors; else `generator` draws them."""
        nll, ce = self.terms(embeddings, logits, labels, anchor_mask, generator)
        return self.propagation_weight * nll + self.ce_weight * ce
