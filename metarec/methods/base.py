"""The method contract: fit on the training side of a split, then score the full catalog per user.

A method never sees query data or test users. It receives a `FitData` (pre-T interactions of warm
users, the catalog text, warm users' fields), optionally a `Validator` that scores candidate
settings on validation users with the protocol's own code, and at scoring time a `SupportBatch`
(all three from `metarec.data.protocol`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from metarec.core.errors import MethodNotApplicableError
from metarec.data.protocol import FitData, SupportBatch, Validator


class Method(ABC):
    """A cold-start recommender under the protocol. Subclasses set `name` and implement two verbs."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()  # older names that still resolve to it (registry)
    predicts_ratings: ClassVar[bool] = False
    runs_on_device: ClassVar[bool] = False  # its __init__ takes `device` (where its network runs)
    # the fewest interactions a user needs before the method can rank for them: 1 for methods that
    # score only from the support items (item-kNN, EASE, MF fold-in, content-kNN); with none, every
    # item would score the same and the "ranking" would be the catalog's id order. The runner leaves
    # such a method out of any K below it, and the report says so.
    min_support: ClassVar[int] = 0

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @abstractmethod
    def fit(self, data: FitData, validator: Validator | None = None) -> "Method":
        """Learn from pre-T data; choose hyperparameters with `validator` (validation users only)."""

    @abstractmethod
    def score(self, batch: SupportBatch) -> np.ndarray:
        """float [U, n_items] scores over the whole catalog (higher = better)."""

    def check_support(self, batch: SupportBatch) -> None:
        """Refuse a batch with fewer interactions per user than `min_support` (called by `score`)."""
        if batch.k < self.min_support:
            raise MethodNotApplicableError(
                f"{self.name} ranks from a user's interactions and needs at least {self.min_support}; "
                f"these users have {batch.k}")

    def predict_ratings(self, batch: SupportBatch, items: list[np.ndarray]) -> list[np.ndarray]:
        """Predicted ratings for given items per user (only where `predicts_ratings`)."""
        raise NotImplementedError(f"{self.name} does not predict ratings")

    def describe(self) -> dict:
        """Chosen hyperparameters etc., for the report."""
        return {}
