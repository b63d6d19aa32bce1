"""Protocol evaluation of one fitted method on one set of new users (the runner's inner loop).

Methods only ever receive `FitData` and `SupportBatch`es built here; query sets stay in this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from metarec.core.errors import ConfigError
from metarec.core.metrics import mae, ranking_metrics, rmse
from metarec.data.splits import ColdStartSplit, Episodes
from metarec.methods.base import FitData, Method, SupportBatch, Validator

KS = (10, 20)
HEADLINE = "ndcg@10"
SCORE_CHUNK = 512  # users scored at once: bounds memory at SCORE_CHUNK x n_items floats
VAL_SAMPLE = 1000  # validation users a validator scores at most (see make_validator)
WARM_SAMPLE = 2000  # returning warm users the runner scores per K for the warm-user scenarios
EVAL_FLOATS = 2 ** 26  # score entries held at once by evaluate_episodes: 512 MB as float64
RECENT_FRACTION = 0.2  # the trend window: the latest fifth of pre-T interactions (a share of the log, not a
# number of days, so it follows each dataset's own time scale)


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


def support_batch(split: ColdStartSplit, ep: Episodes, rows: slice | np.ndarray = slice(None)) -> SupportBatch:
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


def evaluate_episodes(score_fn: Callable[[SupportBatch], np.ndarray], split: ColdStartSplit, ep: Episodes,
                      item_masks: dict[str, np.ndarray | None], *, threshold: float | None = None
                      ) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    """Per-user metrics for each named item mask (None = every item), and the seconds spent scoring.

    Users are scored a block at a time, so memory stays at about EVAL_FLOATS scores however many
    users there are (thousands of warm users x a large catalog would not fit as one array). Blocks
    are whole multiples of SCORE_CHUNK, so `score_fn` sees exactly the batches it would see at once.
    """
    n_items = split.data.n_items
    block = SCORE_CHUNK * max(1, EVAL_FLOATS // (SCORE_CHUNK * max(n_items, 1)))
    parts: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in item_masks}
    seconds = 0.0
    for start in range(0, len(ep), block):
        sub = ep if len(ep) <= block else ep.take(np.arange(start, min(start + block, len(ep))))
        t0 = time.perf_counter()
        scores = score_episodes(score_fn, split, sub)
        seconds += time.perf_counter() - t0
        for name, mask in item_masks.items():
            parts[name].append(metrics_for(scores, sub, threshold=threshold, item_mask=mask))
    out = {name: {m: np.concatenate([p[m] for p in ps]) for m in ps[0]} for name, ps in parts.items() if ps}
    return out, seconds


def rating_errors(method: Method, split: ColdStartSplit, ep: Episodes) -> dict[str, np.ndarray]:
    """Per-user MAE and RMSE of a rating-predicting method on the query items' known ratings.

    MeLU-comparable, reported beside (never instead of) the full-ranking metrics; users whose query
    ratings are all unknown get NaN."""
    out = {"query_mae": np.full(len(ep), np.nan), "query_rmse": np.full(len(ep), np.nan)}
    for start in range(0, len(ep), SCORE_CHUNK):
        rows = np.arange(start, min(start + SCORE_CHUNK, len(ep)))
        preds = method.predict_ratings(support_batch(split, ep, rows), [ep.query_items[u] for u in rows])
        for u, pred in zip(rows, preds):
            truth = np.asarray(ep.query_ratings[u], np.float64)
            ok = ~np.isnan(truth)
            if ok.any():
                out["query_mae"][u] = mae(np.asarray(pred)[ok], truth[ok])
                out["query_rmse"][u] = rmse(np.asarray(pred)[ok], truth[ok])
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


def make_validator(split: ColdStartSplit, k: int = 5, threshold: float | None = None,
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
    return _validator(split, sample_episodes(ep, max_users, [split.config.seed, 11]), threshold)


def _validator(split: ColdStartSplit, ep: Episodes, threshold: float | None) -> Validator:
    """The validator over exactly the episodes `ep`, with `n_users` and `sample(n)` (see methods.base)."""

    def validate(score_fn: Callable[[SupportBatch], np.ndarray]) -> float:
        m = metrics_for(score_episodes(score_fn, split, ep), ep, threshold=threshold, ks=(10,))
        return float(np.nanmean(m[HEADLINE])) if len(ep) else float("nan")

    def sample(n: int) -> Validator:
        """The same over a fixed seeded sample of n of these users (itself when it has no more)."""
        return validate if n >= len(ep) else _validator(split, sample_episodes(ep, n, [split.config.seed, 12]),
                                                        threshold)

    validate.n_users, validate.sample = len(ep), sample
    return validate
