"""The cold-start split of protocol.md ("Splitting"), in code.

Global time cut T; warm users (first interaction < T) feed every fitting step, and only with their
interactions before T; new users (first interaction >= T) are split 1/3 validation, 2/3 test by
seed; a new user's support set is their first K interactions in time order, the query set the rest.
Data without timestamps gets a seeded random user split, which is flagged as such everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import scipy.sparse as sp

from metarec.core.errors import ConfigError, SplitError
from metarec.data.interactions import InteractionData

DEFAULT_SHOTS = (1, 3, 5, 10)


@dataclass(frozen=True, kw_only=True)
class SplitConfig:
    """How to cut the log (defaults are the protocol's)."""

    mode: Literal["time", "random"] = "time"
    cut_percentile: float = 80.0  # of users' first-interaction times
    cut_time: float | None = None  # overrides cut_percentile
    new_user_fraction: float = 0.2  # random mode only
    val_fraction: float = 1.0 / 3.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("time", "random"):
            raise ConfigError(f"mode must be 'time' or 'random', got {self.mode!r}")
        if not 0.0 < self.cut_percentile < 100.0:
            raise ConfigError(f"cut_percentile must be in (0, 100), got {self.cut_percentile}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not 0.0 < self.new_user_fraction < 1.0:
            raise ConfigError(f"new_user_fraction must be in (0, 1), got {self.new_user_fraction}")


@dataclass(frozen=True, eq=False)
class Episodes:
    """New users' support/query sets for one shot count K, as padded arrays.

    Attributes:
        users: int64 [U] user indices (only users with at least K+1 interactions).
        support_items: int64 [U, K]; support_ratings: float32 [U, K] (NaN where unknown).
        query: CSR float32 [U, n_items], the query items with their rating (NaN stored as 0 is
            avoided: implicit/unknown ratings are stored as 1.0 in `query_seen`).
        query_seen: CSR bool [U, n_items], which items are in each user's query set.
        n_dropped: users left out because they have fewer than K+1 interactions.
    """

    k: int
    users: np.ndarray
    support_items: np.ndarray
    support_ratings: np.ndarray
    query_items: list[np.ndarray]
    query_ratings: list[np.ndarray]
    n_items: int
    n_dropped: int

    @cached_property
    def query_seen(self) -> sp.csr_matrix:
        rows = np.repeat(np.arange(len(self.users)), [len(q) for q in self.query_items])
        cols = np.concatenate(self.query_items) if self.query_items else np.zeros(0, np.int64)
        return sp.csr_matrix((np.ones(len(cols), bool), (rows, cols)), shape=(len(self.users), self.n_items))

    def relevant(self, threshold: float | None = None) -> sp.csr_matrix:
        """Boolean [U, n_items]: query items, optionally only those rated >= threshold."""
        if threshold is None:
            return self.query_seen
        rows = np.repeat(np.arange(len(self.users)), [len(q) for q in self.query_items])
        cols = np.concatenate(self.query_items) if self.query_items else np.zeros(0, np.int64)
        r = np.concatenate(self.query_ratings) if self.query_ratings else np.zeros(0)
        keep = np.nan_to_num(r, nan=-np.inf) >= threshold
        return sp.csr_matrix((np.ones(int(keep.sum()), bool), (rows[keep], cols[keep])),
                             shape=(len(self.users), self.n_items))

    def take(self, rows: np.ndarray) -> "Episodes":
        """The episodes of users `rows` only (positions into this set), e.g. a tuning subsample."""
        rows = np.asarray(rows, np.int64)
        return Episodes(k=self.k, users=self.users[rows], support_items=self.support_items[rows],
                        support_ratings=self.support_ratings[rows],
                        query_items=[self.query_items[r] for r in rows],
                        query_ratings=[self.query_ratings[r] for r in rows],
                        n_items=self.n_items, n_dropped=self.n_dropped)

    def __len__(self) -> int:
        return len(self.users)


@dataclass(eq=False)
class ColdStartSplit:
    """One seeded split of a dataset (see module docstring). Build with `make_split`."""

    data: InteractionData
    config: SplitConfig
    cut_time: float | None
    warm_users: np.ndarray
    new_users: np.ndarray
    val_users: np.ndarray
    test_users: np.ndarray
    train_mask: np.ndarray  # bool [N]: interactions the fitting side may see
    order: np.ndarray  # int64 [N]: interaction indices sorted by (user, time, original item id)
    user_start: np.ndarray  # int64 [n_users + 1]: CSR offsets of each user's rows in `order`
    _cache: dict = field(default_factory=dict, repr=False)

    # -- the training side ---------------------------------------------------------------------
    @cached_property
    def train_counts(self) -> np.ndarray:
        """int64 [n_items]: interactions per item before T (popularity as the fitting side sees it)."""
        return np.bincount(self.data.item[self.train_mask], minlength=self.data.n_items)

    @cached_property
    def new_items(self) -> np.ndarray:
        """bool [n_items]: items with no interaction before T."""
        return self.train_counts == 0

    def train_matrix(self, *, values: Literal["binary", "rating"] = "binary",
                     recent: float | None = None) -> sp.csr_matrix:
        """CSR [n_users, n_items] of pre-T interactions (all users; new users' rows are empty).

        recent: keep only the latest `recent` fraction of the pre-T interactions by time (rows at or
        after that percentile of their timestamps): what was being consumed just before the cut.
        """
        d, m = self.data, self.train_mask
        if recent is not None:
            if not 0.0 < recent <= 1.0:
                raise ValueError(f"recent must be in (0, 1], got {recent}")
            if d.timestamp is None or not m.any():
                raise ValueError("a recent window needs timestamps and pre-T interactions")
            m = m & (d.timestamp >= np.percentile(d.timestamp[m], 100.0 * (1.0 - recent)))
        v = np.ones(int(m.sum()), np.float32) if values == "binary" else np.nan_to_num(d.rating[m], nan=1.0)
        return sp.csr_matrix((v, (d.user[m], d.item[m])), shape=(d.n_users, d.n_items), dtype=np.float32)

    def train_sequences(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per warm user, (items, ratings) of their pre-T history in time order."""
        key = "train_seq"
        if key not in self._cache:
            out = []
            for u in self.warm_users:
                rows = self.order[self.user_start[u]: self.user_start[u + 1]]
                rows = rows[self.train_mask[rows]]
                out.append((self.data.item[rows], self.data.rating[rows]))
            self._cache[key] = out
        return self._cache[key]

    # -- the new-user side ---------------------------------------------------------------------
    def user_history(self, u: int, *, after_cut: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(items, ratings) of user u in time order; `after_cut` keeps only rows at/after T."""
        rows = self.order[self.user_start[u]: self.user_start[u + 1]]
        if after_cut:
            rows = rows[~self.train_mask[rows]]
        return self.data.item[rows], self.data.rating[rows]

    @cached_property
    def warm_eval_users(self) -> np.ndarray:
        """Warm users who also interact at/after T: evaluated on those later rows (the warm-user
        scenarios). Fitting never sees those rows; methods get only the support set, as for new users."""
        if self.cut_time is None:
            return np.zeros(0, np.int64)
        post = ~self.train_mask & np.isin(self.data.user, self.warm_users)
        return np.unique(self.data.user[post])

    def users_of(self, which: Literal["val", "test", "new", "warm"]) -> np.ndarray:
        return {"val": self.val_users, "test": self.test_users, "new": self.new_users,
                "warm": self.warm_eval_users}[which]

    def episodes(self, which: Literal["val", "test", "new", "warm"], k: int) -> Episodes:
        """Support = first k interactions, query = the rest, for users with >= k+1 interactions.

        For "warm" (warm users' rows at/after T) the history starts at the cut time.
        """
        if k < 0:
            raise ConfigError(f"shot count must be >= 0, got {k}")
        key = ("ep", which, k)
        if key in self._cache:
            return self._cache[key]
        users, sup_i, sup_r, q_i, q_r = [], [], [], [], []
        dropped = 0
        for u in self.users_of(which):
            items, ratings = self.user_history(int(u), after_cut=which == "warm")
            if len(items) < k + 1:
                dropped += 1
                continue
            users.append(u)
            sup_i.append(items[:k])
            sup_r.append(ratings[:k])
            q_i.append(items[k:])
            q_r.append(ratings[k:])
        n = len(users)
        ep = Episodes(
            k=k, users=np.asarray(users, np.int64),
            support_items=np.asarray(sup_i, np.int64).reshape(n, k),
            support_ratings=np.asarray(sup_r, np.float32).reshape(n, k),
            query_items=q_i, query_ratings=q_r, n_items=self.data.n_items, n_dropped=dropped,
        )
        self._cache[key] = ep
        return ep

    # -- reporting -----------------------------------------------------------------------------
    def summary(self, shots=DEFAULT_SHOTS) -> dict:
        """Counts the protocol asks every report to show (the `metarec data split` contract)."""
        ep = {k: self.episodes("test", k) for k in shots}
        epv = {k: self.episodes("val", k) for k in shots}
        new_q = {k: int(sum(self.new_items[q].sum() for q in e.query_items)) for k, e in ep.items()}
        return {
            "dataset": self.data.name,
            "mode": self.config.mode,
            "seed": self.config.seed,
            "cut_time": self.cut_time,
            "n_users": self.data.n_users,
            "n_items": self.data.n_items,
            "n_warm_users": int(len(self.warm_users)),
            "n_new_users": int(len(self.new_users)),
            "n_val_users": int(len(self.val_users)),
            "n_test_users": int(len(self.test_users)),
            "n_warm_eval_users": int(len(self.warm_eval_users)),
            "n_new_items": int(self.new_items.sum()),
            "n_train_interactions": int(self.train_mask.sum()),
            "users_per_shot": {str(k): len(e) for k, e in ep.items()},
            "val_users_per_shot": {str(k): len(e) for k, e in epv.items()},
            "dropped_test_users_per_shot": {str(k): e.n_dropped for k, e in ep.items()},
            "new_query_items_per_shot": {str(k): v for k, v in new_q.items()},
        }


def _sort_order(data: InteractionData, rng: np.random.Generator | None) -> np.ndarray:
    """Interaction indices sorted by user, then time, then original item id (the protocol's ties)."""
    item_rank = np.empty(data.n_items, np.int64)
    item_rank[np.argsort(data.item_ids, kind="stable")] = np.arange(data.n_items)
    if data.timestamp is not None:
        return np.lexsort((item_rank[data.item], data.timestamp, data.user))
    # no time: a seeded random order within each user stands in for time
    noise = rng.permutation(data.n_interactions) if rng is not None else np.arange(data.n_interactions)
    return np.lexsort((noise, data.user))


def make_split(data: InteractionData, config: SplitConfig | None = None) -> ColdStartSplit:
    """Split `data` per the protocol (time mode) or by seeded random users (random mode)."""
    cfg = config or SplitConfig()
    rng = np.random.default_rng(cfg.seed)
    if cfg.mode == "time" and not data.has_timestamps:
        raise SplitError(
            f"{data.name} has no timestamps, so the protocol's global time cut is impossible; "
            "use a seeded random user split instead (--split random / SplitConfig(mode='random')), "
            "and note that every report will flag it as not time-based"
        )
    if data.n_interactions == 0:
        raise SplitError(f"{data.name} has no interactions to split")
    order = _sort_order(data, np.random.default_rng([cfg.seed, 1]))
    counts = np.bincount(data.user, minlength=data.n_users)
    user_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    all_users = np.arange(data.n_users)
    if cfg.mode == "time":
        first = np.full(data.n_users, np.iinfo(np.int64).max)
        np.minimum.at(first, data.user, data.timestamp)
        first_times = first[counts > 0]
        cut = float(cfg.cut_time) if cfg.cut_time is not None else float(np.percentile(first_times, cfg.cut_percentile))
        warm = all_users[(counts > 0) & (first < cut)]
        new = all_users[(counts > 0) & (first >= cut)]
        train_mask = data.timestamp < cut
    else:
        cut = None
        users = all_users[counts > 0]
        perm = rng.permutation(users)
        n_new = int(round(len(users) * cfg.new_user_fraction))
        new = np.sort(perm[:n_new])
        warm = np.sort(perm[n_new:])
        is_warm = np.zeros(data.n_users, bool)
        is_warm[warm] = True
        train_mask = is_warm[data.user]
    if len(new) == 0 or len(warm) == 0:
        raise SplitError(f"the split leaves {len(warm)} warm and {len(new)} new users; need both")
    perm = rng.permutation(new)
    n_val = int(round(len(new) * cfg.val_fraction))
    return ColdStartSplit(
        data=data, config=cfg, cut_time=cut, warm_users=warm, new_users=new,
        val_users=np.sort(perm[:n_val]), test_users=np.sort(perm[n_val:]),
        train_mask=train_mask, order=order, user_start=user_start,
    )


def split(data: InteractionData, config: SplitConfig | None = None, **settings) -> ColdStartSplit:
    """The protocol's cold-start split of `data`: `config`, or `SplitConfig` fields given as keywords
    (`split(data, seed=1)`); a log without timestamps needs `mode="random"`."""
    if config is not None and settings:
        raise ConfigError("give either a SplitConfig or its fields as keywords, not both")
    return make_split(data, config or SplitConfig(**settings))
