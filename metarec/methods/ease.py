"""`ease`: EASE (Steck, WWW 2019), item-item weights in closed form, lambda chosen on validation users."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from metarec.core.errors import MethodNotApplicableError
from metarec.data.protocol import FitData, SupportBatch, Validator
from metarec.methods.base import Method
from metarec.methods.registry import register
from metarec.models.ease import LAMBDAS, ease_gram, ease_inverse, ease_scores, ease_weights, sweep_lambda


@register
class EASE(Method):
    """EASE (Steck, WWW 2019): closed-form item-item weights B with a zero diagonal.

    B = I - P diag(1 / diag(P)), P = (X^T X + lambda I)^-1. lambda is chosen on validation users;
    a second fit with the same validator and training matrix reuses the first one's sweep.
    """

    name = "ease"
    min_support = 1
    LAMBDAS = LAMBDAS
    # a dense I x I inverse per lambda: 20,000 items is ~3 GB per copy and minutes per inverse on a
    # laptop; beyond that the benchmark skips EASE (and says so) rather than swap or run for hours
    MAX_ITEMS = 20_000

    def __init__(self, seed: int = 0, lam: float | None = None, keep_inverse: bool = False) -> None:
        super().__init__(seed)
        self.lam, self.keep_inverse = lam, keep_inverse
        self.p: np.ndarray | None = None  # P at the chosen lambda, with keep_inverse (metarec's ease feature)
        self.val_scores: dict[float, float] = {}
        self.reused = False  # True when fit took the sweep from the validator's cache

    @staticmethod
    def weights(matrix: sp.csr_matrix, lam: float, gram: np.ndarray | None = None) -> np.ndarray:
        """EASE weights; pass `gram` (X^T X) to reuse it across several lambdas."""
        return ease_weights(ease_inverse(ease_gram(matrix) if gram is None else gram, lam))

    def fit(self, data: FitData, validator: Validator | None = None) -> "EASE":
        """Fit B; with `keep_inverse`, also keep P = (X^T X + lambda I)^-1 at the chosen lambda (`self.p`)."""
        if data.n_items > self.MAX_ITEMS:
            raise MethodNotApplicableError(f"EASE needs a dense {data.n_items} x {data.n_items} inverse; "
                                           f"the catalog exceeds {self.MAX_ITEMS} items")
        if self.lam is not None or validator is None:
            self.lam = self.lam if self.lam is not None else 300.0
            p = ease_inverse(ease_gram(data.warm_matrix), self.lam)
            self.b, self.p = ease_weights(p), (p if self.keep_inverse else None)
            return self
        sweep, self.reused = sweep_lambda(data.warm_matrix, validator, self.LAMBDAS)
        self.lam, self.val_scores = sweep.lam, dict(sweep.val_scores)
        self.b, self.p = ease_weights(sweep.p), (sweep.p if self.keep_inverse else None)
        return self

    def score(self, batch: SupportBatch) -> np.ndarray:
        self.check_support(batch)
        return ease_scores(batch, self.b)

    def describe(self) -> dict:
        # [lambda, score] pairs, not a dict: JSON would turn float keys into strings (and sort them as such)
        return {"lambda": self.lam, "val_ndcg@10_by_lambda": [[lam, s] for lam, s in self.val_scores.items()],
                "sweep_reused": self.reused}
