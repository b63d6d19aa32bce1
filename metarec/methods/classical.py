"""Baselines that need no neural network: random, popularity, item-kNN, EASE, MF (ALS) fold-in."""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from metarec.core.digest import array_digest
from metarec.core.errors import MethodNotApplicableError
from metarec.core.progress import progress
from metarec.core.threads import numpy_single_thread
from metarec.methods.base import FitData, Method, SupportBatch, Validator
from metarec.methods.registry import register
from metarec.models.ease import ease_inverse, ease_weights

log = logging.getLogger(__name__)


@register
class RandomMethod(Method):
    """Uniform random scores: the sanity floor."""

    name = "random"

    def fit(self, data: FitData, validator: Validator | None = None) -> "RandomMethod":
        self.n_items = data.n_items
        self.rng = np.random.default_rng([self.seed, 17])
        return self

    def score(self, batch: SupportBatch) -> np.ndarray:
        return self.rng.random((len(batch), self.n_items))


@register
class Popularity(Method):
    """Score = number of pre-T interactions of the item (the same list for every user)."""

    name = "popularity"

    def fit(self, data: FitData, validator: Validator | None = None) -> "Popularity":
        self.counts = data.item_counts
        return self

    def score(self, batch: SupportBatch) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(batch), self.counts.size)).copy()


def cosine_item_similarity(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """CSR [I, I] cosine similarity between the item columns of a binary user-item matrix."""
    x = sp.csr_matrix(matrix, dtype=np.float64)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    xn = x @ sp.diags(inv)
    return (xn.T @ xn).tocsr()


@register
class ItemKNN(Method):
    """Fold-in item-kNN: score(i) = sum over support items s of cosine(s, i) on the pre-T matrix."""

    name = "itemknn"
    min_support = 1

    def fit(self, data: FitData, validator: Validator | None = None) -> "ItemKNN":
        self.sim = cosine_item_similarity(data.warm_matrix)
        self.n_items = data.n_items
        return self

    def score(self, batch: SupportBatch) -> np.ndarray:
        self.check_support(batch)
        return np.asarray((batch.indicator(self.n_items) @ self.sim).todense())


@dataclass(frozen=True)
class _Sweep:
    """What one EASE lambda sweep found: the chosen lambda, every lambda's validation score, and
    P = (X^T X + lambda I)^-1 at the chosen one (B and metarec's ease feature both derive from it)."""

    lam: float
    val_scores: dict[float, float]
    p: np.ndarray


# Sweeps already run, per validator (so per split: the runner makes one per seed and drops it after)
# and per training matrix. A benchmark fits the EASE baseline, then metarec and pooled-finetune, whose
# ease feature runs the same sweep on the same split; at 10,000 items each sweep is ten dense
# inverses (several minutes on 2 cores), so the later fits reuse the first one's. The result is the
# same either way: the sweep is deterministic.
_SWEEPS: "weakref.WeakKeyDictionary[Validator, dict[str, _Sweep]]" = weakref.WeakKeyDictionary()


@register
class EASE(Method):
    """EASE (Steck, WWW 2019): closed-form item-item weights B with a zero diagonal.

    B = I - P diag(1 / diag(P)), P = (X^T X + lambda I)^-1. lambda is chosen on validation users;
    a second fit with the same validator and training matrix reuses the first one's sweep.
    """

    name = "ease"
    min_support = 1
    LAMBDAS = (10.0, 30.0, 100.0, 300.0, 1e3, 3e3, 1e4, 3e4, 1e5, 3e5)
    # a dense I x I inverse per lambda: 20,000 items is ~3 GB per copy and minutes per inverse on a
    # laptop; beyond that the benchmark skips EASE (and says so) rather than swap or run for hours
    MAX_ITEMS = 20_000

    def __init__(self, seed: int = 0, lam: float | None = None, keep_inverse: bool = False) -> None:
        super().__init__(seed)
        self.lam, self.keep_inverse = lam, keep_inverse
        self.p: np.ndarray | None = None  # P at the chosen lambda, with keep_inverse (metarec's ease feature)
        self.val_scores: dict[float, float] = {}
        self.reused = False  # True when fit took the sweep from an earlier fit (see _SWEEPS)

    @staticmethod
    def gram(matrix: sp.csr_matrix) -> np.ndarray:
        return np.asarray((matrix.T @ matrix).todense(), dtype=np.float64)

    @classmethod
    def weights(cls, matrix: sp.csr_matrix, lam: float, gram: np.ndarray | None = None) -> np.ndarray:
        """EASE weights; pass `gram` (X^T X) to reuse it across several lambdas."""
        return ease_weights(ease_inverse(cls.gram(matrix) if gram is None else gram, lam))

    def fit(self, data: FitData, validator: Validator | None = None) -> "EASE":
        """Fit B; with `keep_inverse`, also keep P = (X^T X + lambda I)^-1 at the chosen lambda (`self.p`)."""
        if data.n_items > self.MAX_ITEMS:
            raise MethodNotApplicableError(f"EASE needs a dense {data.n_items} x {data.n_items} inverse; "
                                           f"the catalog exceeds {self.MAX_ITEMS} items")
        if self.lam is not None or validator is None:
            self.lam = self.lam if self.lam is not None else 300.0
            p = ease_inverse(self.gram(data.warm_matrix), self.lam)
            self.b, self.p = ease_weights(p), (p if self.keep_inverse else None)
            return self
        sweep = self._sweep(data.warm_matrix, validator)
        self.lam, self.val_scores = sweep.lam, dict(sweep.val_scores)
        self.b, self.p = ease_weights(sweep.p), (sweep.p if self.keep_inverse else None)
        return self

    def _sweep(self, matrix: sp.csr_matrix, validator: Validator) -> _Sweep:
        m = sp.csr_matrix(matrix)
        key = array_digest(m.indptr, m.indices, m.data, salt=repr((m.shape, self.LAMBDAS)))
        try:
            done = _SWEEPS.setdefault(validator, {})
        except TypeError:  # a validator that takes no weak reference is simply not cached
            done = {}
        if key in done:
            self.reused = True
            log.info("ease: lambda=%s from an earlier sweep on the same split", done[key].lam)
            return done[key]
        gram = self.gram(matrix)  # the same X^T X for every lambda
        scores: dict[float, float] = {}
        best, best_p = self.LAMBDAS[0], None
        # one dense inverse per lambda: minutes each on a 10,000-item catalog, so show them
        for lam in progress(self.LAMBDAS, desc=f"ease lambda ({gram.shape[0]} items)", unit="lambda"):
            p = ease_inverse(gram, lam)
            self.b = ease_weights(p)
            scores[lam] = validator(self.score)
            if best_p is None or scores[lam] > scores[best]:
                best, best_p = lam, p
            del p
            self.b = None  # one dense I x I less at the next inverse
        log.info("ease: lambda=%s chosen on validation users (%s)", best,
                 ", ".join(f"{lam:g}: {s:.4f}" for lam, s in scores.items()))
        done.clear()  # one training matrix per split: keep only the latest P
        done[key] = _Sweep(lam=best, val_scores=scores, p=best_p)
        return done[key]

    def score(self, batch: SupportBatch) -> np.ndarray:
        self.check_support(batch)
        return np.asarray(batch.indicator(self.b.shape[0]) @ self.b)

    def describe(self) -> dict:
        # [lambda, score] pairs, not a dict: JSON would turn float keys into strings (and sort them as such)
        return {"lambda": self.lam, "val_ndcg@10_by_lambda": [[lam, s] for lam, s in self.val_scores.items()],
                "sweep_reused": self.reused}


def als_fold_in(item_factors: np.ndarray, support: np.ndarray, confidence: np.ndarray,
                reg: float) -> np.ndarray:
    """New users' factors by the implicit-ALS normal equations (Hu, Koren, Volinsky 2008).

    x_u = (Y^T Y + Y_S^T (C_S - 1) Y_S + reg I)^-1 Y_S^T C_S 1, where S are the user's support items.

    Args:
        item_factors: float [I, F].
        support: int64 [U, K] item indices; confidence: float [U, K], alpha * weight (the
            convention of the `implicit` library, whose item factors this consumes).
    Returns:
        float [U, F].
    """
    y = np.asarray(item_factors, dtype=np.float64)
    f = y.shape[1]
    yty = y.T @ y
    ys = y[support]  # [U, K, F]
    c = np.asarray(confidence, dtype=np.float64)
    a = yty[None] + np.einsum("uk,ukf,ukg->ufg", c - 1.0, ys, ys) + reg * np.eye(f)[None]
    rhs = np.einsum("uk,ukf->uf", c, ys)
    return np.linalg.solve(a, rhs[..., None])[..., 0]


@register
class ALSFoldIn(Method):
    """Implicit-feedback matrix factorisation (`implicit` ALS) with new users solved by fold-in.

    Factors, regularisation and the confidence weight alpha (Hu, Koren, Volinsky 2008; in
    `implicit`'s convention an observed pair weighs alpha, an unobserved one 1) are each fixed when
    given, and otherwise chosen on validation users by a coordinate search: factors first, then
    regularisation, then alpha, each tried with the others at their best so far. All three depend on
    the data's size and density (a small catalog cannot use 64 factors; a sparse log may want its
    few positives weighed up), so none is hard-coded. The search starts from DEFAULTS, which are
    also what a fit without a validator uses."""

    name = "mf"
    min_support = 1
    DEFAULTS = {"factors": 64, "reg": 1.0, "alpha": 1.0}
    GRIDS = {"factors": (8, 16, 32, 64, 128), "reg": (1.0, 0.05), "alpha": (1.0, 10.0, 40.0)}

    def __init__(self, seed: int = 0, factors: int | None = None, regularization: float | None = None,
                 alpha: float | None = None, iterations: int = 15) -> None:
        super().__init__(seed)
        self.factors, self.regularization, self.alpha = factors, regularization, alpha
        self.iterations = iterations
        self.val_scores: dict[str, float] = {}

    def _train(self, data: FitData, factors: int, reg: float, alpha: float) -> np.ndarray:
        from implicit.cpu.als import AlternatingLeastSquares
        # implicit's own loop is threaded; a threaded BLAS underneath it only oversubscribes
        # (implicit checks this when the model is built, so build it inside the limit too)
        with numpy_single_thread():
            model = AlternatingLeastSquares(factors=factors, regularization=reg, alpha=alpha,
                                            iterations=self.iterations, random_state=self.seed,
                                            num_threads=1, calculate_training_loss=False)
            model.fit(sp.csr_matrix(data.warm_matrix, dtype=np.float32), show_progress=False)
        return np.asarray(model.item_factors, dtype=np.float64)

    def _use(self, data: FitData, setting: dict) -> None:
        self.y = self._train(data, setting["factors"], setting["reg"], setting["alpha"])
        self.factors, self.regularization, self.alpha = setting["factors"], setting["reg"], setting["alpha"]

    def fit(self, data: FitData, validator: Validator | None = None) -> "ALSFoldIn":
        given = {"factors": self.factors, "reg": self.regularization, "alpha": self.alpha}
        best = {n: given[n] if given[n] is not None else d for n, d in self.DEFAULTS.items()}
        searched = [n for n in self.GRIDS if given[n] is None] if validator is not None else []
        self._use(data, best)
        if not searched:
            return self
        best_y, best_score = self.y, validator(self.score)
        self.val_scores[self._key(best)] = best_score
        for name in searched:
            start = dict(best)
            for value in self.GRIDS[name]:
                if value == start[name]:
                    continue
                setting = {**start, name: value}
                self._use(data, setting)
                self.val_scores[self._key(setting)] = score = validator(self.score)
                if score > best_score:  # the earlier setting on a tie
                    best, best_score, best_y = setting, score, self.y
        self.y = best_y
        self.factors, self.regularization, self.alpha = best["factors"], best["reg"], best["alpha"]
        return self

    @staticmethod
    def _key(setting: dict) -> str:
        return ",".join(f"{n}={v:g}" for n, v in setting.items())

    def score(self, batch: SupportBatch) -> np.ndarray:
        self.check_support(batch)
        conf = self.alpha * np.ones_like(batch.support_items, dtype=np.float64)
        x = als_fold_in(self.y, batch.support_items, conf, self.regularization)
        return x @ self.y.T

    def describe(self) -> dict:
        return {"factors": self.factors, "regularization": self.regularization, "alpha": self.alpha,
                "val_ndcg@10": self.val_scores}
