"""Scoring a user at some items only: candidate retrieval on catalogs too large to score whole, and
exact scores of named items (explanations, `AdaptedUser.score`).

Both run the user's inner loop exactly as full-catalog scoring does (the same negatives, whose
features do not depend on the rest of the catalog), on the catalog restricted to the support set,
its negatives and the items asked for (`ItemSide.restrict`): the adapted weights and the scores are
the full path's, at the cost of those items only. `Retriever` adds the candidate search
(models.retrieval) between the inner loop and the final scoring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import logging
import time

import numpy as np
import torch

from metarec.models.retrieval import CandidateIndex, RetrievalConfig, item_matrix, neighbours, queries

if TYPE_CHECKING:
    from metarec.meta.recommender import MetaRecommender

log = logging.getLogger(__name__)


def adapt_restricted(rec: "MetaRecommender", support: np.ndarray, ratings: np.ndarray, profile: np.ndarray,
                     weights: tuple, extra: np.ndarray) -> tuple:
    """(catalog indices `cols`, inputs of the catalog restricted to them, adapted parameters) for one
    user (support int64 [K], ratings [K], profile [D]): cols = the support set, its inner-loop
    negatives and `extra`, sorted."""
    neg = rec.inner_negatives(support[None])  # [1, K, M] or None
    parts = [support, np.asarray(extra, np.int64)] + ([] if neg is None else [neg.ravel()])
    cols = np.unique(np.concatenate(parts))
    local = lambda a: np.searchsorted(cols, a)  # noqa: E731
    full, inner = rec.build_inputs(rec.side.restrict(cols, support), local(support)[None], ratings[None], profile[None],
                                   None if neg is None else local(neg), cols=cols)
    params, proj = weights
    fast = {}
    if inner is not None:
        fast = rec.learner.adapt(*inner, steps=rec.meta.inner_steps, create_graph=False, proj=proj)
    return cols, full, {**params, **fast}


def scores_at(rec: "MetaRecommender", params: dict, proj, full, cols: np.ndarray, items: np.ndarray) -> np.ndarray:
    """float32 [n]: one adapted user's scores of catalog indices `items`, all inside the sorted `cols`
    whose restricted catalog inputs `full` are."""
    with torch.no_grad():
        s = rec.model.score_fn(params, rec.item_text, full, proj).float().cpu().numpy()[0]
    return s[np.searchsorted(cols, items)]


def score_restricted(rec: "MetaRecommender", support: np.ndarray, ratings: np.ndarray, profile: np.ndarray,
                     params: dict, proj, items: np.ndarray) -> np.ndarray:
    """float32 [n]: exact scores of catalog indices `items` (sorted, unique) for one adapted user."""
    cols = np.unique(np.concatenate([support, items]))
    full, _ = rec.build_inputs(rec.side.restrict(cols, support), np.searchsorted(cols, support)[None], ratings[None],
                               profile[None], cols=cols)
    return scores_at(rec, params, proj, full, cols, items)


def score_items(rec: "MetaRecommender", support: np.ndarray, ratings: np.ndarray, profiles: np.ndarray,
                items: np.ndarray, weights: tuple | None = None) -> np.ndarray:
    """float32 [U, n]: each user's exact scores of catalog indices `items` [n] (support [U, K], ratings
    [U, K], profiles [U, D]), the values full-catalog scoring gives them, at the cost of those items."""
    weights = weights or rec.scoring_weights()
    items = np.asarray(items, np.int64)
    uniq, back = np.unique(items, return_inverse=True)
    out = np.empty((len(support), len(items)), np.float32)
    for r in range(len(support)):
        sup = np.asarray(support[r], np.int64)
        # the inputs the inner loop was built on already hold `uniq`: scored there, not rebuilt
        cols, full, params = adapt_restricted(rec, sup, ratings[r], profiles[r], weights, uniq)
        out[r] = scores_at(rec, params, weights[1], full, cols, uniq)[back]
    return out


class Retriever:
    """Candidates per adapted user from a FAISS index (built on first use under the model's start
    weights), re-scored exactly."""

    def __init__(self, rec: "MetaRecommender", cfg: RetrievalConfig) -> None:
        self.rec, self.cfg = rec, cfg
        self._index: CandidateIndex | None = None
        self._version: tuple | None = None
        self.build_seconds: float | None = None

    @property
    def active(self) -> bool:
        return self.cfg.active(self.rec.side.n_items)

    def index(self) -> CandidateIndex:
        """The index under the model's current weights and text vectors: rebuilt when they changed
        since it was built (`MetaRecommender.weights_version`)."""
        version = self.rec.weights_version()
        if self._index is None or version != self._version:
            self._version = version
            rec = self.rec
            t0 = time.perf_counter()
            z = item_matrix(rec.side, rec.model.params(), rec.model.cfg, rec.item_text)
            dev = rec.device
            self._index = CandidateIndex(z, rec.side.counts, rec.side.recent, self.cfg,
                                         gpu=(dev.index or 0) if dev.type == "cuda" else None)
            self.build_seconds = time.perf_counter() - t0
            log.info("candidate index over %d items built in %.1f s", len(z), self.build_seconds)
        return self._index

    def score_user(self, support: np.ndarray, ratings: np.ndarray, profile: np.ndarray,
                   weights: tuple) -> tuple[np.ndarray, np.ndarray]:
        """(catalog indices of the candidates, sorted; their exact scores float32) for one user."""
        rec, index = self.rec, self.index()
        support = np.asarray(support, np.int64)
        _, full, params = adapt_restricted(rec, support, ratings, profile, weights, index.popular)
        text_sum = rec.side.text[support].astype(np.float64).sum(axis=0, keepdims=True)
        q = queries(params, rec.model.cfg, rec.item_text, full, weights[1], text_sum)
        hits = index.search(q)[0]
        cand = np.unique(np.concatenate([hits[hits >= 0], neighbours(rec.side, support, self.cfg.neighbours),
                                         index.popular, support]))  # the support too, as full scoring has it
        return cand, score_restricted(rec, support, ratings, profile, params, weights[1], cand)
