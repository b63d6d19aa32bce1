"""One user adapted by a `MetaRecommender`: rank the catalog, score items, keep adapting; and the
small pieces every ranked list shares (`check_k`, `top_k`, `plain_id`), for the batched path too."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from metarec.core.errors import ConfigError
from metarec.core.metrics import top_k as ranked_top_k

if TYPE_CHECKING:
    from metarec.meta.recommender import MetaRecommender


def plain_id(v):
    """A numpy scalar id as the plain Python value (JSON and pandas take it as it is); others unchanged."""
    return v.item() if hasattr(v, "item") else v


def check_k(k) -> int:
    """k as an int, or a ConfigError: a list length must be a whole number >= 1 (0, -1 or 2.5 would
    otherwise quietly give an empty or truncated list)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a whole number >= 1, got {k!r}")
    return int(k)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, scores) [U, min(k, I)] of each row's k best scores, best first, ties broken by
    catalog index (the protocol's `metrics.top_k`). Left-out items carry -inf: a row with fewer than k
    others ends in index -1 with score -inf, and callers drop the entries that are not finite."""
    order = ranked_top_k(scores, k)
    return order, np.where(order >= 0, np.take_along_axis(scores, np.maximum(order, 0), axis=1), -np.inf)


class AdaptedUser:
    """One user after adaptation: rank the catalog, score items, keep adapting."""

    def __init__(self, rec: "MetaRecommender", support: np.ndarray, ratings: np.ndarray, profile_vec: np.ndarray,
                 profile: str | None, scores: np.ndarray | None = None) -> None:
        """Adapts to the user (or takes `scores`, float32 [I], already computed in a batch)."""
        self.rec, self.support, self.ratings = rec, support, ratings
        self.profile_vec, self.profile = profile_vec, profile
        self.scores = (rec.score_batch(support[None, :], ratings[None, :], profile_vec[None, :])[0]
                       if scores is None else scores)

    def recommend(self, k: int = 10, exclude_support: bool = True, *, exclude=None,
                  candidates=None, explain: bool = False) -> tuple:
        """(original item ids, scores) of the k best items, best first. `exclude`: item ids never to
        recommend (e.g. seen but not worth adapting on); `candidates`: rank only these item ids
        (e.g. what is in stock). Either naming an item outside the catalog is an UnknownItemError.
        With `explain`, (ids, scores, explanations): see `explain`."""
        top, scores = self._top(k, exclude_support, exclude, candidates)
        ids = [self.rec.item_ids[i] for i in top]
        return (ids, scores, self._explain(top)) if explain else (ids, scores)

    def ranked(self, k: int = 10, *, exclude=None, candidates=None, explain: bool = False,
               exclude_support: bool = True) -> list[dict]:
        """The k best items (support excluded unless `exclude_support` is False) as rows {rank,
        item_id, title, score}, best first; title is None when the model has no titles. What
        `metarec recommend` and the HTTP app show. With `explain`, each row also has `explanation`
        (`Explanation.to_dict`) and `because` (a sentence)."""
        top, scores = self._top(k, exclude_support, exclude, candidates)
        titles = self.rec.titles
        rows = [{"rank": r + 1, "item_id": plain_id(self.rec.item_ids[i]), "title": titles[i] if titles else None,
                 "score": float(s)} for r, (i, s) in enumerate(zip(top, scores))]
        if explain:
            names = self._support_titles()
            for row, e in zip(rows, self._explain(top)):
                row["explanation"], row["because"] = e.to_dict(names), e.because(names)
        return rows

    def explain(self, item_ids) -> list:
        """Why each of `item_ids` scores as it does for this user: an `Explanation` per item with the
        contribution of each support item (exact leave-one-out: the score minus the score without
        it) and of each named signal (exact shares of the head's linear part; the rest is the learned
        interaction). K re-adaptations, batched: cheap for the support sizes metarec is for."""
        return self._explain(self.rec.index_of(list(item_ids)))

    def _explain(self, idx: np.ndarray) -> list:
        from metarec.meta.explain import explain

        scores = self.scores.copy()
        scores[idx] = self._exact(idx)
        out = explain(self.rec, self.support, self.ratings, self.profile_vec, scores, idx)
        for e in out:
            e.item_id = plain_id(e.item_id)
            e.support = [(plain_id(i), c) for i, c in e.support]
        return out

    def _support_titles(self) -> dict:
        """{support item id: title} (empty when the model has no titles)."""
        titles = self.rec.titles
        return {plain_id(self.rec.item_ids[i]): titles[i] for i in self.support} if titles else {}

    def _top(self, k: int, exclude_support: bool, exclude=None, candidates=None) -> tuple[np.ndarray, np.ndarray]:
        """Catalog indices and scores of the k best items, ties broken by index."""
        k = check_k(k)
        s = self.scores.astype(np.float64)  # a copy: the filters below write -inf into it
        if candidates is not None:
            keep = np.zeros(len(s), bool)
            cand = self.rec.index_of(list(candidates))
            keep[cand] = True
            s[~keep] = -np.inf
            s[cand] = self._exact(cand)  # in stock but outside the retrieved candidates: scored now
        if exclude_support:
            s[self.support] = -np.inf
        if exclude is not None and len(exclude):
            s[self.rec.index_of(list(exclude))] = -np.inf
        top, vals = top_k(s[None], k)
        ok = np.isfinite(vals[0])
        return top[0][ok], vals[0][ok]

    def score(self, items) -> np.ndarray:
        """float32: the user's exact scores of `items` (item ids)."""
        return self._exact(self.rec.index_of(list(items)))

    def _exact(self, idx: np.ndarray) -> np.ndarray:
        """Scores of catalog indices `idx`: the stored ones, and, where candidate retrieval left an
        item out (-inf), its exact score computed now."""
        s = self.scores[idx]  # a copy (fancy indexing)
        miss = ~np.isfinite(s)
        if miss.any():
            s[miss] = self.rec.score_items(self.support[None], self.ratings[None], self.profile_vec[None], idx[miss])[0]
        return s

    def update(self, interactions) -> "AdaptedUser":
        """A new AdaptedUser adapted on the support set plus `interactions` (item ids, or (item_id,
        rating) pairs; no rating means unknown), in the order given, as the user's newest.

        An item already in the support set (or given twice here) is a re-rating: the newest rating
        counts, and the item moves to the end of the support set as its latest interaction. This
        user is left as it was."""
        ids, rs = [], []
        for x in interactions:
            i, r = (x if isinstance(x, (tuple, list)) else (x, float("nan")))
            ids.append(i)
            rs.append(float("nan") if r is None else r)
        new = self.rec.index_of(ids)
        idx = np.concatenate([self.support, new])
        r = np.concatenate([self.ratings.astype(np.float64), np.asarray(rs, np.float64)])
        # keep each item's last entry only, in the order those last entries come
        last = np.flatnonzero(~pd.Series(idx[::-1]).duplicated().to_numpy()[::-1])
        idx, r = idx[last], r[last]
        self.rec.check_support(idx, r)  # as float64: a huge rating is refused, not cast to inf
        return AdaptedUser(self.rec, idx, r.astype(np.float32), self.profile_vec, self.profile)
