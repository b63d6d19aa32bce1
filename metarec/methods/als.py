"""`als` (alias `mf`): implicit-feedback matrix factorisation (`implicit` ALS), new users folded in."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from metarec.core.threads import numpy_single_thread
from metarec.data.protocol import FitData, SupportBatch, Validator
from metarec.methods.base import Method
from metarec.methods.registry import register


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

    name = "als"
    aliases = ("mf",)  # its name before it had a file of its own
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
