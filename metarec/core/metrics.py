"""Full-ranking top-k metrics, vectorised over users (protocol.md, "Scoring").

Inputs are a score matrix over the whole catalog (`scores: float [U, I]`, items a user must not be
recommended — their support items — set to -inf) and a boolean relevance matrix (`relevant:
bool [U, I]`). Ties in score are broken by item index, ascending, so results are deterministic.
A user with no relevant item has every relevance-based metric undefined (NaN); aggregate with
`nanmean` and report how many users were undefined.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch

__all__ = [
    "top_k",
    "ranking_metrics",
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "map_at_k",
    "hit_rate_at_k",
    "auc",
    "mae",
    "rmse",
    "long_tail_share",
    "METRIC_NAMES",
]

METRIC_NAMES = ("precision", "recall", "ndcg", "map", "hit")


def _dense_bool(relevant: np.ndarray | sp.spmatrix) -> np.ndarray:
    if sp.issparse(relevant):
        relevant = relevant.toarray()
    return np.asarray(relevant, dtype=bool)


def _float_scores(scores) -> np.ndarray:
    """`scores` as float32 or float64 (kept as given: a float32's float64 image ranks the same), any
    other type as float64."""
    scores = np.asarray(scores)
    return scores if scores.dtype in (np.float32, np.float64) else scores.astype(np.float64)


def _has_nan(scores: np.ndarray) -> bool:
    """Whether any score is NaN, in one pass without a mask: a NaN anywhere makes the sum NaN (so does
    +inf beside -inf, a false alarm that only costs top_k its slower path)."""
    with np.errstate(invalid="ignore"):
        return bool(np.isnan(scores.sum()))


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best items per row, best first; ties broken by lower item index.

    Args:
        scores: float [U, I]; -inf marks items that must never be ranked.
        k: list length; if k > I the whole catalog is returned (k is clipped to I).

    Returns:
        int64 [U, min(k, I)]. Entries pointing at -inf items are returned as -1 (a user whose
        non-excluded catalog is shorter than k gets a shorter effective list).
    """
    scores = _float_scores(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D [users, items], got shape {scores.shape}")
    n_users, n_items = scores.shape
    k = int(min(k, n_items))
    if k <= 0 or n_users == 0:
        return np.zeros((n_users, max(k, 0)), dtype=np.int64)
    if k >= n_items:
        part = np.broadcast_to(np.arange(n_items), (n_users, n_items)).copy()
        exact = np.zeros(n_users, dtype=bool)
    elif not _has_nan(scores):
        # torch.topk selects without argpartition's index array as large as the scores (allocated and
        # paged in on every call). Any selection gives the same set unless the k-th value ties with an
        # item outside it, and those rows are sorted exactly below.
        t = torch.from_numpy(np.require(scores, requirements=["C", "W"]))
        low, part = (a.numpy() for a in torch.topk(t, k, dim=1, sorted=False))
        exact = (scores >= low.min(axis=1)[:, None]).sum(axis=1) > k
    else:  # NaN scores: numpy's partition, which puts them last
        neg = -scores
        part = np.argpartition(neg, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(neg, part, axis=1).max(axis=1)
        # rows whose k-th value is tied with an item outside the partition need an exact sort
        exact = (neg <= kth[:, None]).sum(axis=1) > k
    # order the partition by (score desc, index asc): lexsort uses the last key as primary
    vals = -np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, vals), axis=1)
    out = np.take_along_axis(part, order, axis=1)
    if exact.any():
        rows = np.flatnonzero(exact)
        out[rows] = np.argsort(-scores[rows], axis=1, kind="stable")[:, :k]
    excluded = np.isneginf(np.take_along_axis(scores, out, axis=1))
    out[excluded] = -1
    return out


def _hits(scores: np.ndarray, relevant: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    rel = _dense_bool(relevant)
    if rel.shape != np.shape(scores):
        raise ValueError(f"relevance shape {rel.shape} != scores shape {np.shape(scores)}")
    idx = top_k(scores, k)
    hits = np.zeros(idx.shape, dtype=bool)
    valid = idx >= 0
    rows = np.broadcast_to(np.arange(idx.shape[0])[:, None], idx.shape)
    hits[valid] = rel[rows[valid], idx[valid]]
    # excluded (-inf) items are never relevant: they are not part of the ranking
    n_rel = (rel & ~np.isneginf(_float_scores(scores))).sum(axis=1)
    return hits, n_rel


def _pad(hits: np.ndarray, k: int) -> np.ndarray:
    """Right-pad the hit matrix with misses to width k (k larger than the catalog)."""
    if hits.shape[1] >= k:
        return hits
    return np.pad(hits, ((0, 0), (0, k - hits.shape[1])))


def _undefined(values: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    values[n_rel == 0] = np.nan
    return values


def ranking_metrics(
    scores: np.ndarray,
    relevant: np.ndarray | sp.spmatrix,
    ks: Sequence[int] = (10,),
) -> dict[str, np.ndarray]:
    """All relevance metrics at every k in one pass; keys like "ndcg@10", values float [U].

    Definitions (binary relevance, R = number of relevant items the user can be recommended):
      precision@k = hits/k; recall@k = hits/R; hit@k = 1 if hits > 0;
      ndcg@k = DCG/IDCG with gain 1/log2(rank+1) and IDCG over min(R, k) items;
      map@k = sum over relevant ranks r <= k of precision@r, divided by min(R, k).
    """
    kmax = max(ks)
    hits, n_rel = _hits(scores, relevant, kmax)
    hits = _pad(hits, kmax).astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, kmax + 2))
    cum_hits = np.cumsum(hits, axis=1)
    prec_at_rank = cum_hits / np.arange(1, kmax + 1)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        h = hits[:, :k]
        n_hit = h.sum(axis=1)
        denom_k = np.minimum(n_rel, k)
        idcg = np.concatenate([[0.0], np.cumsum(discounts[:k])])[denom_k]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"precision@{k}"] = _undefined(n_hit / k, n_rel)
            out[f"recall@{k}"] = _undefined(n_hit / n_rel, n_rel)
            out[f"hit@{k}"] = _undefined((n_hit > 0).astype(np.float64), n_rel)
            out[f"ndcg@{k}"] = _undefined((h * discounts[:k]).sum(axis=1) / idcg, n_rel)
            out[f"map@{k}"] = _undefined((prec_at_rank[:, :k] * h).sum(axis=1) / denom_k, n_rel)
    return out


def precision_at_k(scores, relevant, k: int = 10) -> np.ndarray:
    """float [U]: the share of each user's top k that is relevant."""
    return ranking_metrics(scores, relevant, (k,))[f"precision@{k}"]


def recall_at_k(scores, relevant, k: int = 10) -> np.ndarray:
    """float [U]: the share of each user's relevant items found in their top k."""
    return ranking_metrics(scores, relevant, (k,))[f"recall@{k}"]


def ndcg_at_k(scores, relevant, k: int = 10) -> np.ndarray:
    """float [U]: normalised discounted cumulative gain of each user's top k (binary relevance)."""
    return ranking_metrics(scores, relevant, (k,))[f"ndcg@{k}"]


def map_at_k(scores, relevant, k: int = 10) -> np.ndarray:
    """float [U]: average precision of each user's top k."""
    return ranking_metrics(scores, relevant, (k,))[f"map@{k}"]


def hit_rate_at_k(scores, relevant, k: int = 10) -> np.ndarray:
    """float [U]: 1 where a user's top k holds any relevant item."""
    return ranking_metrics(scores, relevant, (k,))[f"hit@{k}"]


def auc(scores: np.ndarray, relevant: np.ndarray | sp.spmatrix) -> np.ndarray:
    """Per-user ROC AUC of relevant vs non-relevant, non-excluded items; ties count one half.

    NaN for a user with no relevant or no non-relevant candidate.
    """
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    rel = _dense_bool(relevant)
    excl = np.isneginf(scores)
    rel = rel & ~excl
    # average ranks (1 = lowest); excluded items are all tied at the bottom and are removed
    # from each relevant item's rank below by subtracting their count
    ranks = rankdata(scores, axis=1, method="average")
    n_excl = excl.sum(axis=1)
    n_pos = rel.sum(axis=1)
    n_neg = (~excl).sum(axis=1) - n_pos
    r_pos = np.where(rel, ranks, 0.0).sum(axis=1) - n_pos * n_excl
    with np.errstate(divide="ignore", invalid="ignore"):
        res = (r_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    res[(n_pos == 0) | (n_neg == 0)] = np.nan
    return res


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error of predictions against truth."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    return float(np.abs(pred - truth).mean()) if pred.size else float("nan")


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Root mean squared error of predictions against truth."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    return float(np.sqrt(((pred - truth) ** 2).mean())) if pred.size else float("nan")


def long_tail_share(
    scores: np.ndarray, item_popularity: np.ndarray, k: int = 10, head_fraction: float = 0.2
) -> np.ndarray:
    """Per user: the share of the top-k list outside the `head_fraction` most popular items.

    The head is the ceil(head_fraction * I) items with the highest popularity (ties by index).
    """
    pop = np.asarray(item_popularity, dtype=np.float64)
    n_head = int(np.ceil(head_fraction * pop.size))
    head = np.zeros(pop.size, dtype=bool)
    head[np.lexsort((np.arange(pop.size), -pop))[:n_head]] = True
    idx = top_k(scores, k)
    valid = idx >= 0
    tail = valid & ~head[np.where(valid, idx, 0)]
    with np.errstate(divide="ignore", invalid="ignore"):
        return tail.sum(axis=1) / valid.sum(axis=1)
