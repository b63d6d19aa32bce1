"""One content hash for numpy arrays: what the EASE sweep cache and a benchmark's progress folder
key on to tell "the same data" from data that merely has the same shape."""

from __future__ import annotations

import hashlib

import numpy as np


def array_digest(*arrays: np.ndarray | None, salt: str = "") -> str:
    """Hex blake2b of `salt` and each array's dtype, shape and bytes, in order (None is skipped)."""
    h = hashlib.blake2b(salt.encode(), digest_size=16)
    for a in arrays:
        if a is not None:
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()
