"""EASE's closed form (Steck, WWW 2019), shared by the EASE baseline and metarec's ease feature.

P = (X^T X + lambda I)^-1 and B = I - P diag(1 / diag P): item-item weights with a zero diagonal.
The feature keeps P itself (a training task removes its own row from it by a rank-one update), the
baseline keeps B; both come from the one inverse here, so the feature can reuse the baseline's.
"""

from __future__ import annotations

import numpy as np


def ease_inverse(gram: np.ndarray, lam: float) -> np.ndarray:
    """float64 [I, I] (gram + lam I)^-1; `gram` is X^T X (dense, left unchanged)."""
    g = np.array(gram, dtype=np.float64, copy=True)
    g[np.diag_indices_from(g)] += lam
    return np.linalg.inv(g)


def ease_weights(p: np.ndarray) -> np.ndarray:
    """float64 [I, I] B = -P / diag(P) column-wise, with its diagonal set to 0."""
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b
