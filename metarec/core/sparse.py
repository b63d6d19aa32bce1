"""Sparse-matrix helpers shared by the layers above (one place, not one copy per caller)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def indicator(items: np.ndarray, n_items: int) -> sp.csr_matrix:
    """float32 CSR [U, n_items] with a 1 at items[u, j] for every j in row u (a repeated item adds up)."""
    u, k = items.shape
    return sp.csr_matrix((np.ones(u * k, np.float32), (np.repeat(np.arange(u), k), np.asarray(items).ravel())),
                         shape=(u, n_items))
