"""A validation split carved from the training identities, for model selection."""

from __future__ import annotations

import numpy as np

from reid.data.datasets.base import Record, relabel


def carve_validation(
    train: list[Record], num_identities: int, seed: int, all_vs_all: bool = False
) -> tuple[list[Record], list[Record], list[Record]]:
    """Hold out `num_identities` training identities seen by at least 2 cameras.

    Returns (train relabelled 0..N-1, val query, val gallery): one query per identity
    and camera, the rest gallery, so model selection never looks at the test split.
    `all_vs_all` (retrieval sets, no cameras): identities with at least 2 images are held
    out, and their images are both val query and val gallery (the same list).
    """
    if num_identities <= 0:
        return train, [], []
    cams_by_pid: dict[int, set[int]] = {}
    images_by_pid: dict[int, int] = {}
    for r in train:
        cams_by_pid.setdefault(r.pid, set()).add(r.camid)
        images_by_pid[r.pid] = images_by_pid.get(r.pid, 0) + 1
    if all_vs_all:
        eligible = sorted(pid for pid, n in images_by_pid.items() if n >= 2)
    else:
        eligible = sorted(pid for pid, cams in cams_by_pid.items() if len(cams) >= 2)
    if len(eligible) < num_identities or len(cams_by_pid) - num_identities < 2:
        raise ValueError(f"data.val_identities = {num_identities} is too many for {len(cams_by_pid)} identities")
    held = set(np.random.default_rng(seed).choice(eligible, size=num_identities, replace=False).tolist())
    if all_vs_all:
        val = [r for r in train if r.pid in held]
        return relabel([r for r in train if r.pid not in held]), val, val
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
