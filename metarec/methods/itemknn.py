"""`itemknn`: fold-in item-kNN over cosine similarities of the pre-T interaction matrix."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from metarec.data.protocol import FitData, SupportBatch, Validator
from metarec.methods.base import Method
from metarec.methods.registry import register


def cosine_item_similarity(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """CSR [I, I] cosine similarity between the item columns of a binary user-item matrix."""
    x = sp.csr_matrix(matrix, dtype=np.float64)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    xn = x @ sp.diags(inv)
    return (xn.T @ xn).tocsr()


@register
class ItemKNN(Method):
    """Fold-in item-kNN: score(i) = sum over support items s of cosine(s, i) on the pre-T matrix."""

    name = "itemknn"
    min_support = 1

    def fit(self, data: FitData, validator: Validator | None = None) -> "ItemKNN":
        self.sim = cosine_item_similarity(data.warm_matrix)
        self.n_items = data.n_items
        return self

    def score(self, batch: SupportBatch) -> np.ndarray:
        self.check_support(batch)
        return np.asarray((batch.indicator(self.n_items) @ self.sim).todense())
