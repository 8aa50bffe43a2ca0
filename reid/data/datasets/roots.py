"""Where datasets live: the data root and each benchmark's folder under it.

Folder names are matched loosely (case, dashes, underscores and the release's
version suffix ignored), so `Market-1501`, `Market-1501-v15.09.15`, `market1501`,
`MSMT17_V1`, `MSMT17_V2`, `DukeMTMC-reID` and `cuhk03-np` are all found, directly
under the root or one level deeper (torchreid's `market1501/Market-1501-v15.09.15`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from reid.errors import DataError

ENV_VAR = "REID_DATA_ROOT"
DEFAULT_ROOT = "datasets"


def resolve_data_root(explicit: str | None) -> Path:
    """The data root: `explicit` (--data-root) if given, else $REID_DATA_ROOT, else `datasets/`."""
    chosen = explicit or os.environ.get(ENV_VAR) or DEFAULT_ROOT
    return Path(chosen).expanduser()


def normalise(name: str) -> str:
    """'Market-1501-v15.09.15' -> 'market1501v150915'."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _matching_children(folder: Path, key: str) -> list[Path]:
    try:
        children = sorted(folder.iterdir())
    except OSError:
        return []
    return [c for c in children if c.is_dir() and normalise(c.name).startswith(key)]


def find_dataset_folder(root: Path, key: str, is_layout: Callable[[Path], bool], label: str, expected: str) -> Path:
    """The folder under `root` whose normalised name starts with `key` and passes `is_layout`.

    `root` itself is accepted when it already has the layout. Raises DataError when
    the root is missing, nothing fits, or several folders fit.
    """
    if not root.is_dir():
        raise DataError(f"data root {root} not found: pass --data-root DIR or set {ENV_VAR}")
    if is_layout(root):
        return root
    found = []
    for child in _matching_children(root, key):
        if is_layout(child):
            found.append(child)
        else:
            found.extend(g for g in _matching_children(child, key) if is_layout(g))
    if len(found) > 1:
        names = ", ".join(str(f.relative_to(root)) for f in found)
        raise DataError(f"{root}: several {label} folders ({names}); pass one of them as --data-root")
    if not found:
        raise DataError(
            f"{label} not found under {root}: expected a folder named like {expected} "
            f"(see datasets/README.md; set --data-root or {ENV_VAR})"
        )
    return found[0]
