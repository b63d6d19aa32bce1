"""`random`: uniform random scores, the sanity floor."""

from __future__ import annotations

import numpy as np

from metarec.data.protocol import FitData, SupportBatch, Validator
from metarec.methods.base import Method
from metarec.methods.registry import register


@register
class RandomMethod(Method):
    """Uniform random scores: the sanity floor."""

    name = "random"

    def fit(self, data: FitData, validator: Validator | None = None) -> "RandomMethod":
        self.n_items = data.n_items
        self.rng = np.random.default_rng([self.seed, 17])
        return self

    def score(self, batch: SupportBatch) -> np.ndarray:
        return self.rng.random((len(batch), self.n_items))
