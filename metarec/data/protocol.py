"""The protocol's views of a split (protocol.md), in one place: what a method may fit on (`FitData`),
the new users it scores (`SupportBatch`), and the validator that scores a candidate setting on
validation users with the protocol's own metric. Query sets never leave this module and
`metarec.bench.evaluate`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from metarec.core.distributed import shard, sum_over_ranks, world
from metarec.core.errors import ConfigError
from metarec.core.metrics import ranking_metrics
from metarec.core.sparse import indicator
from metarec.data.splits import ColdStartSplit, Episodes

KS = (10, 20)
HEADLINE = "ndcg@10"
SCORE_CHUNK = 512  # users scored at once: bounds memory at SCORE_CHUNK x n_items floats
VAL_SAMPLE = 1000  # validation users a validator scores at most (see make_validator)
VAL_SHOTS = 5  # the support size K at which validation users are scored unless told otherwise
RECENT_FRACTION = 0.2  # the trend window: the latest fifth of pre-T interactions (a share of the log, not a
# number of days, so it follows each dataset's own time scale)


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
            the trend feature, see RECENT_FRACTION); None without timestamps.
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


ScoreFn = Callable[[SupportBatch], np.ndarray]


class Validator:
    """score_fn -> mean NDCG@10 over a fixed set of validation users at one K: what every choice is
    made on (a method's settings, a start, early stopping). Build one with `make_validator`.

    Attributes:
        n_users: how many users it scores.
        cache: results that depend only on the split behind it (an EASE lambda sweep, say), shared
            by every fit that uses this validator and dropped with it; the validator's owner (the
            benchmark runner, `meta_train`) decides how long that is. Methods must work with any
            callable as a validator, without these.
    """

    def __init__(self, split: ColdStartSplit, ep: Episodes, threshold: float | None = None,
                 cache: dict | None = None, max_users: int | None = VAL_SAMPLE) -> None:
        self.split, self.ep, self.threshold, self.max_users = split, ep, threshold, max_users
        self.cache = {} if cache is None else cache

    @property
    def k(self) -> int:
        """The support size its users are scored at."""
        return self.ep.k

    @property
    def n_users(self) -> int:
        return len(self.ep)

    def __call__(self, score_fn: ScoreFn) -> float:
        ep = self.ep
        rank, size = world()
        if size > 1:  # data-parallel: each process scores its share of the users, the sums are combined
            ep = ep.take(np.arange(len(ep))[shard(len(ep), rank, size)])
        m = metrics_for(score_episodes(score_fn, self.split, ep), ep, threshold=self.threshold, ks=(10,))[HEADLINE]
        total, n = sum_over_ranks(np.array([np.nansum(m), np.count_nonzero(~np.isnan(m))], np.float64))
        return float(total / n) if n else float("nan")

    def sample(self, n: int) -> "Validator":
        """The same over a fixed seeded sample of n of these users (itself when it has no more): a
        cheaper, noisier estimate for searches that try many candidates."""
        if n >= len(self.ep):
            return self
        return Validator(self.split, sample_episodes(self.ep, n, [self.split.config.seed, 12]), self.threshold,
                         self.cache, self.max_users)

    def at(self, k: int) -> "Validator | None":
        """The same validation users' sample rule at support size k (itself at its own k); None when
        no validation user has more than k interactions."""
        if k == self.k:
            return self
        ep = self.split.episodes("val", k)
        return _validator(self.split, ep, self.threshold, self.max_users, self.cache) if len(ep) else None


class MeanValidator:
    """The mean of several validators' scores (the same users at several support sizes): what a
    model that serves every K early-stops on, so that no one K is favoured."""

    def __init__(self, parts: list[Validator]) -> None:
        if not parts:
            raise ConfigError("MeanValidator needs at least one validator")
        self.parts = parts

    @property
    def ks(self) -> tuple[int, ...]:
        return tuple(p.k for p in self.parts)

    def __call__(self, score_fn: ScoreFn) -> float:
        return float(np.mean([p(score_fn) for p in self.parts]))


def fit_data(split: ColdStartSplit) -> FitData:
    """The fitting side of a split: pre-T interactions, catalog text, warm users' fields only."""
    d = split.data
    users = d.users.copy()
    not_warm = np.ones(d.n_users, bool)
    not_warm[split.warm_users] = False
    users.loc[not_warm, [c for c in users.columns if c != "user_id"]] = None
    first = recent = None
    if d.timestamp is not None and split.cut_time is not None and split.train_mask.any():
        recent = split.train_matrix(values="binary", recent=RECENT_FRACTION)
    if d.timestamp is not None:
        first = np.full(d.n_users, np.inf)
        np.minimum.at(first, d.user[split.train_mask], d.timestamp[split.train_mask].astype(np.float64))
        first = first[split.warm_users]
    return FitData(
        matrix=split.train_matrix(values="binary"), ratings=split.train_matrix(values="rating"),
        sequences=split.train_sequences(), warm_users=split.warm_users, items=d.items, users=users,
        explicit=d.explicit, dataset=d.name, first_times=first, recent=recent,
    )


def keep_warm_users(fd: FitData, n: int, seed: int = 0) -> FitData:
    """`fd` with only a seeded sample of `n` of its warm users (all of them when it has no more):
    their rows, sequences, fields and times; the others' rows emptied. What "a log with few warm
    users" looks like to every method, for transfer and data-size studies."""
    if n >= len(fd.warm_users):
        return fd
    if n < 1:
        raise ConfigError(f"warm users to keep must be >= 1, got {n}")
    keep = np.sort(np.random.default_rng([seed, 19]).choice(fd.warm_users, size=n, replace=False))
    rows = np.isin(np.arange(fd.matrix.shape[0]), keep)
    only = sp.diags(rows.astype(np.float32))
    pos = np.flatnonzero(np.isin(fd.warm_users, keep))  # positions in the warm-user order
    users = fd.users.copy()
    users.loc[~rows, [c for c in users.columns if c != "user_id"]] = None
    return FitData(matrix=(only @ fd.matrix).tocsr(), ratings=(only @ fd.ratings).tocsr(),
                   sequences=[fd.sequences[i] for i in pos], warm_users=fd.warm_users[pos], items=fd.items,
                   users=users, explicit=fd.explicit, dataset=fd.dataset,
                   first_times=None if fd.first_times is None else fd.first_times[pos],
                   recent=None if fd.recent is None else (only @ fd.recent).tocsr())


def support_batch(split: ColdStartSplit, ep: Episodes, rows: slice | np.ndarray = slice(None)) -> SupportBatch:
    """The `SupportBatch` of episodes `ep` (rows `rows`): support items, ratings and profile fields."""
    return SupportBatch(
        support_items=ep.support_items[rows], support_ratings=ep.support_ratings[rows],
        users=split.data.users.iloc[ep.users[rows]].reset_index(drop=True),
    )


def score_episodes(score_fn: Callable[[SupportBatch], np.ndarray], split: ColdStartSplit,
                   ep: Episodes) -> np.ndarray:
    """[U, n_items] scores with every user's support items set to -inf: float32 when the method
    returns float32 (every float32 is exactly a float64, so the ranking is the same, at half the
    memory and copying), float64 otherwise."""
    out = np.empty((len(ep), split.data.n_items), dtype=np.float64) if not len(ep) else None
    for start in range(0, len(ep), SCORE_CHUNK):
        rows = slice(start, start + SCORE_CHUNK)
        s = np.asarray(score_fn(support_batch(split, ep, rows)))  # as returned: the copy into `out` casts
        if s.shape != (min(SCORE_CHUNK, len(ep) - start), split.data.n_items):
            raise ValueError(f"score() returned shape {s.shape}; expected [users, {split.data.n_items}]")
        wide = s.dtype != np.float32
        if out is None:
            out = np.empty((len(ep), split.data.n_items), dtype=np.float64 if wide else np.float32)
        elif wide and out.dtype == np.float32:
            out = out.astype(np.float64)  # a later chunk came back wider: nothing is rounded
        out[rows] = s
    if ep.k:
        r = np.repeat(np.arange(len(ep)), ep.k)
        out[r, ep.support_items.ravel()] = -np.inf
    return out


def metrics_for(scores: np.ndarray, ep: Episodes, *, threshold: float | None = None,
                item_mask: np.ndarray | None = None, ks=KS) -> dict[str, np.ndarray]:
    """Per-user metrics; `item_mask` restricts relevance to a subset of items (the scenarios)."""
    rel = ep.relevant(threshold)
    if item_mask is not None:
        rel = rel.multiply(item_mask[None, :]).tocsr()
    out = ranking_metrics(scores, rel, ks)
    out["n_relevant"] = np.asarray(rel.sum(axis=1)).ravel().astype(np.float64)
    return out


def sample_episodes(ep: Episodes, max_users: int | None, seed) -> Episodes:
    """`ep` itself, or a fixed seeded sample of `max_users` of its users (in their original order)."""
    if max_users is None or len(ep) <= max_users:
        return ep
    rng = np.random.default_rng(seed)
    return ep.take(np.sort(rng.choice(len(ep), size=max_users, replace=False)))


def check_val_shots(k: int) -> None:
    """Refuse a validation K below 1 (the benchmark's config checks it before any data is read)."""
    if k < 1:
        raise ConfigError(f"validation shots must be >= 1 (methods that rank from a user's items refuse K = 0), got {k}")


def make_validator(split: ColdStartSplit, k: int = VAL_SHOTS, threshold: float | None = None,
                   max_users: int | None = VAL_SAMPLE) -> Validator:
    """score_fn -> mean NDCG@10 over validation users at K = k (what methods tune on).

    With `max_users`, a fixed seeded sample of that many validation users stands in for all of
    them: methods call the validator dozens of times (grid searches, early stopping), and on a
    large dataset scoring thousands of users over the whole catalog each time would dominate the
    run, while the mean over 1,000 users is already precise to about +-0.01."""
    check_val_shots(k)
    ep = split.episodes("val", k)
    if len(split.users_of("val")) and not len(ep):
        raise ConfigError(f"no validation user has more than {k} interactions, so none can be scored at K = {k} "
                          "(choose a smaller validation K)")
    return _validator(split, ep, threshold, max_users)


def _validator(split: ColdStartSplit, ep: Episodes, threshold: float | None, max_users: int | None,
               cache: dict | None = None) -> Validator:
    """A Validator over `ep`, or its fixed seeded sample of `max_users` users (see make_validator)."""
    return Validator(split, sample_episodes(ep, max_users, [split.config.seed, 11]), threshold, cache, max_users)
