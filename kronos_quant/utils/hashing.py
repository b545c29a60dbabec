"""Stable content hashes for cache keys and data fingerprints."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

__all__ = ["stable_hash", "hash_array", "hash_json"]


def hash_json(obj: Any) -> str:
    """sha256 hex digest of the canonical JSON form of ``obj`` (sorted keys)."""
    data = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(data).hexdigest()


def hash_array(arr: np.ndarray) -> str:
    """sha256 hex digest of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256()
    h.update(str(a.dtype).encode())
    h.update(str(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def stable_hash(*parts: Any) -> str:
    """Combine strings, arrays and JSON-able objects into one sha256 hex digest."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(hash_array(p).encode())
        elif isinstance(p, (bytes, bytearray)):
            h.update(bytes(p))
        elif isinstance(p, str):
            h.update(p.encode())
        else:
            h.update(hash_json(p).encode())
        h.update(b"\x00")
    return h.hexdigest()
