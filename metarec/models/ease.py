"""EASE's closed form (Steck, WWW 2019), shared by the EASE baseline and metarec's ease feature.

P = (X^T X + lambda I)^-1 and B = I - P diag(1 / diag P): item-item weights with a zero diagonal.
The feature keeps P itself (a training task removes its own row from it by a rank-one update), the
baseline keeps B; both come from the one inverse here, so the feature can reuse the baseline's.
`sweep_lambda` chooses lambda on validation users for both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy.sparse as sp

from metarec.core.digest import array_digest
from metarec.core.progress import progress
from metarec.data.protocol import SupportBatch, Validator

log = logging.getLogger(__name__)


def ease_inverse(gram: np.ndarray, lam: float) -> np.ndarray:
    """float64 [I, I] (gram + lam I)^-1; `gram` is X^T X (dense, left unchanged)."""
    g = np.array(gram, dtype=np.float64, copy=True)
    g[np.diag_indices_from(g)] += lam
    return np.linalg.inv(g)


def ease_weights(p: np.ndarray) -> np.ndarray:
    """float64 [I, I] B = -P / diag(P) column-wise, with its diagonal set to 0."""
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


LAMBDAS = (10.0, 30.0, 100.0, 300.0, 1e3, 3e3, 1e4, 3e4, 1e5, 3e5)  # ridge strengths tried on validation users


@dataclass(frozen=True)
class EaseSweep:
    """What one lambda sweep found: the chosen lambda, every lambda's validation score, and
    P = (X^T X + lambda I)^-1 at the chosen one (B and metarec's ease feature both derive from it)."""

    lam: float
    val_scores: dict[float, float]
    p: np.ndarray


def ease_gram(matrix: sp.spmatrix) -> np.ndarray:
    """float64 [I, I] X^T X of a user-item matrix, dense."""
    return np.asarray((matrix.T @ matrix).todense(), dtype=np.float64)


def ease_scores(batch: SupportBatch, b: np.ndarray) -> np.ndarray:
    """[U, I] EASE scores: the sum of B's rows over each user's support items."""
    return np.asarray(batch.indicator(b.shape[0]) @ b)


def sweep_lambda(matrix: sp.csr_matrix, validator: Validator, lambdas=LAMBDAS) -> tuple[EaseSweep, bool]:
    """(the lambda sweep on `matrix`, whether it came from `validator.cache`).

    Each lambda is one dense inverse (minutes at 10,000 items), so a sweep is kept in the validator's
    cache, where a later fit on the same split and matrix (the EASE baseline, then metarec's ease
    feature) finds it. The result is the same either way: the sweep is deterministic. Without a
    `cache` attribute (any callable may be a validator) nothing is kept."""
    m = sp.csr_matrix(matrix)
    key = array_digest(m.indptr, m.indices, m.data, salt=repr((m.shape, tuple(lambdas))))
    cache = getattr(validator, "cache", None)
    done = cache.setdefault("ease", {}) if cache is not None else {}
    if key in done:
        log.info("ease: lambda=%s from an earlier sweep on the same split", done[key].lam)
        return done[key], True
    gram = ease_gram(matrix)  # the same X^T X for every lambda
    scores: dict[float, float] = {}
    best, best_p = lambdas[0], None
    # one dense inverse per lambda: minutes each on a 10,000-item catalog, so show them
    for lam in progress(lambdas, desc=f"ease lambda ({gram.shape[0]} items)", unit="lambda"):
        p = ease_inverse(gram, lam)
        b = ease_weights(p)
        scores[lam] = validator(partial(ease_scores, b=b))
        if best_p is None or scores[lam] > scores[best]:
            best, best_p = lam, p
        del p, b  # one dense I x I less at the next inverse
    log.info("ease: lambda=%s chosen on validation users (%s)", best,
             ", ".join(f"{lam:g}: {s:.4f}" for lam, s in scores.items()))
    done.clear()  # one training matrix per split: keep only the latest P
    done[key] = EaseSweep(lam=best, val_scores=scores, p=best_p)
    return done[key], False
