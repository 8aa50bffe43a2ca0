"""The one hash: short, stable hex digests that name things by content (configs, weights, feature jobs)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys (anything not JSON-native as its str), so equal values hash equally."""
    return json.dumps(value, sort_keys=True, default=str)


def stable_hash(parts: Iterable[Any], length: int = 16) -> str:
    """The first `length` hex digits of SHA-256 over `parts` in order.

    bytes are fed as they are, str as UTF-8, anything else as its `canonical_json`.
    """
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            part = part.encode()
        elif not isinstance(part, (bytes, bytearray, memoryview)):
            part = canonical_json(part).encode()
        digest.update(part)
    return digest.hexdigest()[:length]
