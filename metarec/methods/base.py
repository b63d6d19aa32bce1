"""The method contract: fit on the training side of a split, then score the full catalog per user.

A method never sees query data or test users. It receives a `FitData` (pre-T interactions of warm
users, the catalog text, warm users' fields), optionally a `Validator` that scores candidate
settings on validation users with the protocol's own code, and at scoring time a `SupportBatch`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from metarec.core.errors import MethodNotApplicableError
from metarec.core.sparse import indicator


@dataclass(frozen=True, eq=False)
class FitData:
    """Everything the fitting side may see: interactions strictly before the cut time.

    Attributes:
        matrix: CSR float32 [n_users, n_items], 1 per pre-T interaction (rows of non-warm users
            are empty; indices are the dataset's user indices).
        ratings: CSR float32 [n_users, n_items] with the pre-T ratings (NaN -> 1).
        sequences: per warm user, (items, ratings) of their pre-T history in time order.
        warm_users: int64 [W] user indices that have pre-T history.
        items: the catalog DataFrame (text fields are always known).
        users: user-field DataFrame restricted to warm users (others' rows are blanked).
        explicit: whether ratings are explicit scores.
        dataset: dataset name, for caches and messages.
        first_times: each warm user's first interaction time (None without timestamps).
        recent: CSR float32 like `matrix`, only the latest pre-T interactions (the window behind
            the trend feature, see bench.evaluate.RECENT_FRACTION); None without timestamps.
    """

    matrix: sp.csr_matrix
    ratings: sp.csr_matrix
    sequences: list[tuple[np.ndarray, np.ndarray]]
    warm_users: np.ndarray
    items: pd.DataFrame
    users: pd.DataFrame
    explicit: bool
    dataset: str
    first_times: np.ndarray | None = None  # float [W] first pre-T interaction time per warm user
    recent: sp.csr_matrix | None = None

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @cached_property
    def item_counts(self) -> np.ndarray:
        """float64 [n_items]: pre-T interactions per item."""
        return np.asarray(self.matrix.sum(axis=0)).ravel().astype(np.float64)

    @cached_property
    def warm_matrix(self) -> sp.csr_matrix:
        """CSR [W, n_items]: the rows of warm users only."""
        return self.matrix[self.warm_users]


@dataclass(frozen=True, eq=False)
class SupportBatch:
    """New users to score: their support sets (padded) and profile fields.

    Attributes:
        support_items: int64 [U, K] (K may be 0).
        support_ratings: float32 [U, K] (NaN = interaction without a score).
        users: DataFrame [U] of the users' profile fields (age, gender, occupation, description).
    """

    support_items: np.ndarray
    support_ratings: np.ndarray
    users: pd.DataFrame

    def __len__(self) -> int:
        return len(self.support_items)

    @property
    def k(self) -> int:
        return self.support_items.shape[1]

    def indicator(self, n_items: int) -> sp.csr_matrix:
        """CSR [U, n_items] with a 1 at each support item."""
        return indicator(self.support_items, n_items)


# Validator(score_fn) -> mean NDCG@10 of validation users at the validator's shot count. The runner's
# validators (bench.evaluate.make_validator) also carry `n_users` (how many users they score) and
# `sample(n)`, the same validator over a fixed seeded n of those users: a cheaper, noisier estimate
# for searches that try many candidates. Methods must work without them (any callable is a validator).
Validator = Callable[[Callable[[SupportBatch], np.ndarray]], float]


class Method(ABC):
    """A cold-start recommender under the protocol. Subclasses set `name` and implement two verbs."""

    name: ClassVar[str]
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
