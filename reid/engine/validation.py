"""A validation split carved from the training identities, for model selection."""

from __future__ import annotations

import numpy as np

from reid.data.datasets.base import Record, relabel


def carve_validation(
    train: list[Record], num_identities: int, seed: int
) -> tuple[list[Record], list[Record], list[Record]]:
    """Hold out `num_identities` training identities seen by at least 2 cameras.

    Returns (train relabelled 0..N-1, val query, val gallery): one query per identity
    and camera, the rest gallery, so model selection never looks at the test split.
    """
    if num_identities <= 0:
        return train, [], []
    cams_by_pid: dict[int, set[int]] = {}
    for r in train:
        cams_by_pid.setdefault(r.pid, set()).add(r.camid)
    eligible = sorted(pid for pid, cams in cams_by_pid.items() if len(cams) >= 2)
    if len(eligible) < num_identities or len(cams_by_pid) - num_identities < 2:
        raise ValueError(f"data.val_identities = {num_identities} is too many for {len(cams_by_pid)} identities")
    held = set(np.random.default_rng(seed).choice(eligible, size=num_identities, replace=False).tolist())
    query, gallery, seen = [], [], set()
    for r in train:
        if r.pid not in held:
            continue
        if (r.pid, r.camid) in seen:
            gallery.append(r)
        else:
            seen.add((r.pid, r.camid))
            query.append(r)
    return relabel([r for r in train if r.pid not in held]), query, gallery
