"""Named option sets of the Group Loss: what `loss: {group: {}}` means, and the authors' original.

`GroupLoss()` itself keeps the authors' defaults (its maths is tested against them); a config's
`loss.group` starts from a preset (`preset: NAME`, default `DEFAULT_PRESET`) and its own keys
override the preset's. Why the default is what it is: docs/group-loss.md (measured ablation).
"""

from __future__ import annotations

from typing import Any

GROUP_PRESETS: dict[str, dict[str, Any]] = {
    # Elezi et al. (ECCV 2020), their re-ID setting: Pearson W, tau 80, 3 anchors per identity, T 2,
    # auxiliary label-smoothed CE with weight 1, gradients through W, mean over all samples.
    "authors": {
        "temperature": 80.0,
        "num_anchors": 3,
        "num_iters": 2,
        "similarity": "pearson",
        "zero_diagonal": False,
        "ce_weight": 1.0,
        "label_smoothing": 0.1,
        "reduction": "all",
        "detach_similarity": False,
        "propagation_weight": 1.0,
        "w_features": "pooled",
    },
    # the recipe that measured best at equal budget (docs/group-loss.md)
    "recommended": {
        "temperature": 10.0,
        "num_anchors": 1,
        "num_iters": 1,
        "similarity": "cosine",
        "zero_diagonal": False,
        "ce_weight": 1.0,
        "label_smoothing": 0.1,
        "reduction": "all",
        "detach_similarity": False,
        "propagation_weight": 1.0,
        "w_features": "pooled",
    },
}
DEFAULT_PRESET = "recommended"


def group_options(options: dict[str, Any]) -> dict[str, Any]:
    """The GroupLoss keyword arguments of a config's `loss.group` mapping (without "weight").

    Raises KeyError naming the preset when it is unknown.
    """
    options = dict(options)
    name = options.pop("preset", DEFAULT_PRESET)
    if name not in GROUP_PRESETS:
        raise KeyError(f"unknown preset {name!r} (choose from {', '.join(GROUP_PRESETS)})")
    return {**GROUP_PRESETS[name], **options}
