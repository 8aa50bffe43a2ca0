"""Query expansion: alpha-QE (Radenovic et al. 2018) and database-side augmentation (DBA).

Both replace a feature by the L2-normalised weighted sum of its k nearest
neighbours by cosine similarity, itself always the first (weight 1), the others
weighted by max(sim, 0) ** alpha (alpha = 0: plain mean). k counts the feature
itself, as fast-reid's ``qe_k`` does, so k = 1 returns the normalised input.
Negative similarities get weight 0 so that a non-integer alpha stays defined.
Neighbours are found in row chunks of the similarity matrix; nothing N x N
is held. Inputs are L2-normalised first; outputs are L2-normalised float32 in
the input's kind (numpy array or torch tensor, on its device).
"""

from __future__ import annotations

import numpy as np
import torch

from reid.evaluation.distance import l2_normalize, to_tensor

__all__ = ["alpha_query_expansion", "database_side_augmentation"]


def alpha_query_expansion(
    q_feats: np.ndarray | torch.Tensor,
    g_feats: np.ndarray | torch.Tensor,
    k: int = 10,
    alpha: float = 3.0,
    *,
    pool: str = "all",
    chunk_size: int = 1024,
) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
    """alpha-QE applied to queries and gallery alike.

    q_feats (Q, D), g_feats (G, D). pool="all": neighbours come from queries and
    gallery together (fast-reid's ``aqe`` with qe_times=1); pool="gallery": from
    the gallery only, so the gallery side is exactly
    ``database_side_augmentation``. Returns the expanded (Q, D) and (G, D).
    """
    q, g = _prepare(q_feats, "q_feats"), _prepare(g_feats, "g_feats")
    _check(k, alpha, chunk_size)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"q_feats {tuple(q.shape)} and g_feats {tuple(g.shape)} must share D")
    if pool == "all":
        both = torch.cat([q, g])
        out = _expand(both, both, k, alpha, chunk_size, self_offset=0)
        q_new, g_new = out[: q.shape[0]], out[q.shape[0] :]
    elif pool == "gallery":
        q_new = _expand(q, g, k, alpha, chunk_size, self_offset=None)
        g_new = _expand(g, g, k, alpha, chunk_size, self_offset=0)
    else:
        raise ValueError(f"pool must be 'all' or 'gallery', got {pool!r}")
    return _like(q_new, q_feats), _like(g_new, g_feats)


def database_side_augmentation(
    g_feats: np.ndarray | torch.Tensor, k: int = 10, alpha: float = 3.0, *, chunk_size: int = 1024
) -> np.ndarray | torch.Tensor:
    """DBA: every gallery feature (G, D) replaced by the weighted sum of its k nearest gallery features."""
    g = _prepare(g_feats, "g_feats")
    _check(k, alpha, chunk_size)
    return _like(_expand(g, g, k, alpha, chunk_size, self_offset=0), g_feats)


def _expand(
    x: torch.Tensor, pool: torch.Tensor, k: int, alpha: float, chunk: int, self_offset: int | None
) -> torch.Tensor:
    """Rows of x expanded with their k - 1 nearest rows of pool (x[i] is pool[i + self_offset] if given)."""
    out = torch.empty_like(x)
    others = min(k - 1, pool.shape[0] - (1 if self_offset is not None else 0))
    for a in range(0, x.shape[0], chunk):
        xa = x[a : a + chunk]
        acc = xa.clone()  # the feature itself, weight sim(x, x) ** alpha = 1
        if others > 0:
            sim = xa @ pool.T
            if self_offset is not None:
                rows = torch.arange(xa.shape[0], device=x.device)
                sim[rows, rows + a + self_offset] = -float("inf")  # never count itself twice
            top, idx = sim.topk(others, dim=1)
            w = top.clamp(min=0.0).pow(alpha) if alpha != 0 else torch.ones_like(top)
            acc += torch.bmm(w.unsqueeze(1), pool[idx]).squeeze(1)
        out[a : a + chunk] = l2_normalize(acc)
    return out


def _prepare(a: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    t = to_tensor(a, name)
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (n, D) matrix, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return l2_normalize(t)


def _check(k: int, alpha: float, chunk_size: int) -> None:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k}")
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be finite and >= 0, got {alpha}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")


def _like(t: torch.Tensor, original: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    return t if isinstance(original, torch.Tensor) else t.cpu().numpy()
