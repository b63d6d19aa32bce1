"""Users as tasks: sample support/query windows from warm users' pre-T histories as padded tensors.

A task is one warm user: support = K consecutive interactions, query = the (up to `n_query`)
interactions that follow. The inner loop fits support positives against sampled negatives (any item
but the support, as at test time: later items may be among them); the outer loss scores query
positives against other sampled negatives. K is shared within a meta-batch, so a meta-batch is a
handful of [T, ...] tensors, not a list of objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from metarec.core.errors import ConfigError
from metarec.core.sparse import indicator
from metarec.models.features import ALL_FEATURES, FEATURES, ItemSide, SupportFeatures
from metarec.models.scoring import ScoringConfig, ScoreInputs


@dataclass(eq=False)
class MetaData:
    """The fitting side in the form the meta-learner consumes (see metarec.meta.train.meta_data for building it)."""

    side: ItemSide
    sequences: list[tuple[np.ndarray, np.ndarray]]  # per task-eligible warm user: items, ratings
    user_rows: sp.csr_matrix  # [len(sequences), I] binary pre-T rows (for leave-own-row-out)
    profiles: np.ndarray  # float32 [len(sequences), E]
    rating_max: float = 5.0
    explicit: bool = True
    recency: np.ndarray | None = None  # float [W] in [0, 1]: rank of each user's arrival time
    recent_rows: sp.csr_matrix | None = None  # [len(sequences), I] the same rows inside the trend window
    _lens: np.ndarray | None = field(default=None, repr=False)

    @property
    def lengths(self) -> np.ndarray:
        if self._lens is None:
            self._lens = np.array([len(s[0]) for s in self.sequences])
        return self._lens


@dataclass
class TaskBatch:
    """T tasks. `inner` scores the support-set candidates, `outer` the query-set candidates."""

    inner: ScoreInputs
    inner_labels: torch.Tensor  # float [T, Ni] (1 positive, 0 negative; rating for mse)
    inner_mask: torch.Tensor  # float [T, Ni]
    outer: ScoreInputs
    outer_labels: torch.Tensor
    outer_mask: torch.Tensor
    # the most positives (label > 0, mask > 0) any task has among its outer candidates, counted on the
    # host when the batch is made (the approx_ndcg loss needs it; reading it from a GPU waits for the
    # GPU, and a CUDA graph cannot capture that); None = not known here
    max_pos: int | None = None

    def task(self, t: int) -> "TaskBatch":
        sl = slice(t, t + 1)
        return TaskBatch(self.inner.select(sl), self.inner_labels[sl], self.inner_mask[sl],
                         self.outer.select(sl), self.outer_labels[sl], self.outer_mask[sl])

    def to(self, **kw) -> "TaskBatch":
        return TaskBatch(self.inner.to(**kw), self.inner_labels.to(**kw), self.inner_mask.to(**kw),
                         self.outer.to(**kw), self.outer_labels.to(**kw), self.outer_mask.to(**kw), self.max_pos)

    @property
    def n_tasks(self) -> int:
        return self.inner.items.shape[0]


def support_weights(ratings: np.ndarray, mask: np.ndarray, rating_max: float, explicit: bool) -> np.ndarray:
    """Rating-weighted pooling weights (1 where the rating is unknown or feedback is implicit)."""
    if explicit:
        w = np.where(np.isnan(ratings), 1.0, ratings / max(rating_max, 1e-6))
    else:
        w = np.ones_like(ratings, dtype=np.float64)
    return (w * mask).astype(np.float32)


def sample_negatives(rng: np.random.Generator, n_items: int, shape: tuple[int, int],
                     forbidden: sp.csr_matrix | None, probs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Uniform (or `probs`-weighted) negatives [T, N] and a mask that drops any forbidden item."""
    neg = rng.choice(n_items, size=shape, p=probs) if probs is not None else rng.integers(0, n_items, size=shape)
    ok = np.ones(shape, bool) if forbidden is None else _allowed(neg, forbidden)
    return neg.astype(np.int64), ok


def _allowed(neg: np.ndarray, forbidden: sp.csr_matrix) -> np.ndarray:
    """bool [T, N]: which sampled negatives are not in their task's `forbidden` row."""
    return np.take_along_axis(forbidden.toarray(), neg, axis=1) == 0


def _feature_columns(cfg: ScoringConfig, feats: np.ndarray) -> torch.Tensor:
    """The model's configured features (cfg.features, in order) out of the ALL_FEATURES-ordered last axis
    (FEATURES, then "ease" when it was computed)."""
    cols = [ALL_FEATURES.index(f) for f in cfg.features]
    return torch.from_numpy(np.ascontiguousarray(feats if cols == list(range(feats.shape[-1])) else feats[..., cols]))


def _inputs(cfg: ScoringConfig, items: np.ndarray, feats: np.ndarray, keep_full: np.ndarray, support: np.ndarray,
            weights: np.ndarray, profile: np.ndarray, drop: np.ndarray) -> ScoreInputs:
    return ScoreInputs(
        items=torch.from_numpy(np.array(items, dtype=np.int64)),  # a copy: inputs may be broadcast views
        feats=_feature_columns(cfg, feats),
        item_keep=torch.from_numpy(np.take_along_axis(keep_full, items, axis=1).astype(np.float32)),
        support=torch.from_numpy(support),
        support_w=torch.from_numpy(weights),
        support_keep=torch.from_numpy(np.take_along_axis(keep_full, support, axis=1).astype(np.float32)),
        profile=torch.from_numpy(profile.astype(np.float32)),
        drop=torch.from_numpy(np.array(drop, dtype=np.int64)),
    )


def outer_inputs(cfg: ScoringConfig, items: np.ndarray, sf: SupportFeatures, keep_full: np.ndarray,
                 support: np.ndarray, weights: np.ndarray, profile: np.ndarray) -> ScoreInputs:
    """Candidates scored with the whole support set (the query set, or the full catalog)."""
    feats = np.take_along_axis(sf.full, items[..., None], axis=1)
    return _inputs(cfg, items, feats, keep_full, support, weights, profile, np.full(items.shape, -1))


def catalog_inputs(cfg: ScoringConfig, sf: SupportFeatures, keep: np.ndarray, support: np.ndarray,
                   weights: np.ndarray, profile: np.ndarray) -> ScoreInputs:
    """Every catalog item for every task, as `outer_inputs` would give with items = arange(I),
    but with the item index and id-keep rows as stride-0 views (the same for every task), so the
    network computes the catalog's item vectors once per batch instead of once per user.

    Args:
        keep: float/bool [I] (1 = use the id embedding).
    """
    u_n, i_n = sf.full.shape[:2]
    return ScoreInputs(
        items=torch.arange(i_n).expand(u_n, i_n),
        feats=_feature_columns(cfg, sf.full),
        item_keep=torch.from_numpy(np.asarray(keep, np.float32)).expand(u_n, i_n),
        support=torch.from_numpy(np.array(support, dtype=np.int64)),
        support_w=torch.from_numpy(weights),
        support_keep=torch.from_numpy(np.take(np.asarray(keep, np.float32), support)),
        profile=torch.from_numpy(profile.astype(np.float32)),
        drop=torch.tensor(-1).expand(u_n, i_n),
    )


def inner_inputs(side: ItemSide, cfg: ScoringConfig, negatives: np.ndarray, neg_ok: np.ndarray, sf: SupportFeatures,
                 keep_full: np.ndarray, support: np.ndarray, weights: np.ndarray, profile: np.ndarray,
                 ratings: np.ndarray | None = None) -> tuple[ScoreInputs, np.ndarray, np.ndarray]:
    """Leave-one-out inner-loop candidates: support item j against its own negatives, every feature
    (and the user vector) computed from the other support items.

    Args:
        negatives: int64 [T, K, M]; neg_ok: bool [T, K, M].
        ratings: [T, K] labels for the mse loss (None = 1/0 labels).
    Returns:
        (inputs over T x K(1+M) candidates, labels [T, K(1+M)], mask [T, K(1+M)]).
    """
    t, k, m = negatives.shape
    items = np.concatenate([support[..., None], negatives], axis=2)  # [T, K, 1+M]
    feats = side.leave_one_out(sf, items)
    pos_lab = np.ones((t, k)) if ratings is None else np.nan_to_num(ratings, nan=1.0)
    labels = np.concatenate([pos_lab[..., None], np.zeros((t, k, m))], axis=2)
    mask = np.concatenate([sf.mask[..., None], neg_ok & sf.mask[..., None]], axis=2)
    drop = np.broadcast_to(np.arange(k)[None, :, None], items.shape)
    flat = lambda a: a.reshape(t, k * (1 + m), *a.shape[3:])  # noqa: E731
    inputs = _inputs(cfg, flat(items), flat(feats), keep_full, support, weights, profile, flat(drop))
    return inputs, flat(labels), flat(mask)


def sample_tasks(md: MetaData, cfg: ScoringConfig, rng: np.random.Generator, *, n_tasks: int, k: int,
                 n_query: int = 20, n_neg: int = 100, n_inner_neg: int = 20,
                 id_dropout: float | None = None, loss: str = "bce", p_first: float = 0.0,
                 neg_power: float = 0.0, recent_fraction: float = 1.0, part: slice | None = None) -> TaskBatch:
    """Sample T tasks with support size k from users with at least k + 1 pre-T interactions.

    part: build only these tasks of the T (a data-parallel rank's share). Every random draw is made
    for all T first, so the tasks of `part` are exactly those rows of the whole batch and `rng` ends
    in the same state on every rank; only the costly features are computed for the part alone.

    p_first: probability that a task's window starts at the user's first interaction (as a new
    user's support set always does at test time); otherwise the start is uniform.
    neg_power: negatives are drawn with probability proportional to count**neg_power (0 = uniform).
    n_neg: outer negatives per task; -1 (or >= the catalog size) = every catalog item.
    n_inner_neg: inner-loop negatives per support item (each support item is a positive against its own).
    recent_fraction: draw tasks only from this fraction of warm users who arrived last (the ones
    most like new users, who arrive after the cut); 1 = all warm users.
    """
    longest = int(md.lengths.max()) if len(md.lengths) else 0
    if longest < 2:
        raise ConfigError("meta-training needs warm users with at least 2 interactions before the cut")
    k = min(k, longest - 1)  # a short-history dataset caps the support size
    ok = md.lengths >= k + 1
    if recent_fraction < 1.0 and md.recency is not None:
        recent = md.recency >= 1.0 - recent_fraction
        ok = ok & recent if (ok & recent).any() else ok
    eligible = np.flatnonzero(ok)
    users = rng.choice(eligible, size=n_tasks, replace=len(eligible) < n_tasks)
    n_i = md.side.n_items
    sup = np.zeros((n_tasks, k), np.int64)
    sup_r = np.zeros((n_tasks, k))
    qry = np.zeros((n_tasks, n_query), np.int64)
    qry_r = np.zeros((n_tasks, n_query))
    qmask = np.zeros((n_tasks, n_query), bool)
    for t, u in enumerate(users):
        items, ratings = md.sequences[u]
        start = 0 if rng.random() < p_first else int(rng.integers(0, len(items) - k))
        sup[t], sup_r[t] = items[start:start + k], ratings[start:start + k]
        q = items[start + k:start + k + n_query]
        qry[t, :len(q)], qry_r[t, :len(q)], qmask[t, :len(q)] = q, ratings[start + k:start + k + len(q)], True
    part = slice(0, n_tasks) if part is None else part
    all_tasks = n_tasks
    users, sup, sup_r, qry, qry_r, qmask = (a[part] for a in (users, sup, sup_r, qry, qry_r, qmask))
    n_tasks = len(users)
    rows = md.user_rows[users]
    smask = np.ones((n_tasks, k), bool)
    sf = md.side.support_features(sup, smask, exclude=rows,
                                  exclude_recent=None if md.recent_rows is None else md.recent_rows[users],
                                  features=cfg.features)
    drop = id_dropout if id_dropout is not None else cfg.id_dropout
    keep = (sf.full[..., FEATURES.index("new")] == 0) & (rng.random((all_tasks, n_i))[part] >= drop)
    w = support_weights(sup_r, smask, md.rating_max, md.explicit)
    prof = md.profiles[users]
    probs = None
    if neg_power:
        probs = np.power(md.side.counts + 1.0, neg_power)
        probs /= probs.sum()
    m = n_inner_neg  # per support item: the inner loss keeps its shape as K grows
    # the inner loop knows only the support set, as at test time (recommender._negatives): its
    # negatives may be the user's later items. Excluding the user's whole row here would tell the
    # inner loop that none of them is a later positive, which a new user's inner loop cannot know.
    in_neg = sample_negatives(rng, n_i, (all_tasks, k * m), None)[0][part]
    in_ok = _allowed(in_neg, indicator(sup, n_i))
    if n_neg < 0 or n_neg >= n_i:
        # the whole catalog as outer candidates; the user's other pre-T items are neither
        # positives nor negatives (masked), as at test time where support items are excluded
        n_neg = n_i
        out_neg = np.broadcast_to(np.arange(n_i), (n_tasks, n_i)).copy()
        out_ok = rows.toarray() == 0
    else:
        out_neg = sample_negatives(rng, n_i, (all_tasks, n_neg), None, probs)[0][part]
        out_ok = _allowed(out_neg, rows)
    mse = loss == "mse"  # labels are ratings for MSE, 1/0 for the ranking losses
    inner, in_lab, in_mask = inner_inputs(md.side, cfg, in_neg.reshape(n_tasks, k, m), in_ok.reshape(n_tasks, k, m),
                                          sf, keep, sup, w, prof, ratings=sup_r if mse else None)
    out_items = np.concatenate([qry, out_neg], axis=1)
    out_lab = np.concatenate([np.nan_to_num(qry_r, nan=1.0) if mse else qmask.astype(float),
                              np.zeros((n_tasks, n_neg))], axis=1)
    out_mask = np.concatenate([qmask, out_ok], axis=1)
    f32 = lambda a: torch.from_numpy(np.asarray(a, np.float32))  # noqa: E731
    return TaskBatch(
        inner=inner, inner_labels=f32(in_lab), inner_mask=f32(in_mask),
        outer=outer_inputs(cfg, out_items, sf, keep, sup, w, prof),
        outer_labels=f32(out_lab), outer_mask=f32(out_mask),
        max_pos=int(((out_lab > 0) & out_mask).sum(1).max()) if n_tasks else 0,
    )
