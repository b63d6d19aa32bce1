"""`popularity`: the most interacted-with items before the cut, the same list for everyone."""

from __future__ import annotations

import numpy as np

from metarec.data.protocol import FitData, SupportBatch, Validator
from metarec.methods.base import Method
from metarec.methods.registry import register


@register
class Popularity(Method):
    """Score = number of pre-T interactions of the item (the same list for every user)."""

    name = "popularity"

    def fit(self, data: FitData, validator: Validator | None = None) -> "Popularity":
        self.counts = data.item_counts
        return self

    def score(self, batch: SupportBatch) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(batch), self.counts.size)).copy()
