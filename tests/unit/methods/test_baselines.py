"""Classical baselines against slow, direct reference computations."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from metarec.data.protocol import fit_data, metrics_for, score_episodes
from metarec.data import SplitConfig, make_split
from metarec.methods import create_method
from metarec.data.protocol import SupportBatch
from metarec.methods.als import ALSFoldIn, als_fold_in
from metarec.methods.ease import EASE


def _ref_ndcg(scores: dict[int, float], relevant: set[int], k=10) -> float:
    ranked = sorted(scores, key=lambda i: (-scores[i], i))[:k]
    dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(ranked) if i in relevant)
    idcg = sum(1 / math.log2(r + 2) for r in range(min(len(relevant), k)))
    return dcg / idcg


def _reference_scores(split, name, support):
    """Pure-python popularity / item-kNN from the raw pre-T rows."""
    d = split.data
    rows = np.flatnonzero(split.train_mask)
    users_of = {}
    for r in rows:
        users_of.setdefault(int(d.item[r]), set()).add(int(d.user[r]))
    out = {}
    for i in range(d.n_items):
        if i in support:
            continue
        if name == "popularity":
            out[i] = float(len(users_of.get(i, ())))
        else:
            tot = 0.0
            for s in support:
                a, b = users_of.get(int(s), set()), users_of.get(i, set())
                if a and b:
                    tot += len(a & b) / math.sqrt(len(a) * len(b))
            out[i] = tot
    return out


@pytest.mark.parametrize("name", ["popularity", "itemknn"])
def test_per_user_ndcg_matches_slow_reference(tiny_ml, name):
    split = make_split(tiny_ml)
    m = create_method(name).fit(fit_data(split))
    for k in (1, 3):
        ep = split.episodes("new", k)
        got = metrics_for(score_episodes(m.score, split, ep), ep)["ndcg@10"]
        for row in range(len(ep)):
            sup = set(ep.support_items[row].tolist())
            want = _ref_ndcg(_reference_scores(split, name, sup), set(ep.query_items[row].tolist()))
            assert got[row] == pytest.approx(want, abs=1e-12)


def test_ease_equals_columnwise_constrained_ridge():
    rng = np.random.default_rng(0)
    x = (rng.random((40, 7)) < 0.3).astype(np.float64)
    lam = 2.5
    b = EASE.weights(sp.csr_matrix(x), lam)
    for j in range(7):
        others = [i for i in range(7) if i != j]
        xo = x[:, others]
        col = np.linalg.solve(xo.T @ xo + lam * np.eye(6), xo.T @ x[:, j])
        np.testing.assert_allclose(b[others, j], col, atol=1e-10)
        assert b[j, j] == 0.0


def test_ease_picks_lambda_on_validation(tiny_ml):
    split = make_split(tiny_ml)
    seen = []

    def validator(score_fn):
        seen.append(1)
        return float(len(seen) == 3)  # the third lambda "wins"

    validator.cache = {}  # a validator owns the sweeps made with it (make_validator's do)
    m = EASE().fit(fit_data(split), validator)
    assert m.lam == EASE.LAMBDAS[2] and len(seen) == len(EASE.LAMBDAS)
    assert m.p is None  # the inverse is kept only when asked for
    # keep_inverse (metarec's ease feature reuses it): P at the chosen lambda, the same B
    seen.clear()
    k = EASE(keep_inverse=True).fit(fit_data(split), validator)
    assert k.lam == m.lam
    np.testing.assert_array_equal(k.b, m.b)
    x = fit_data(split).warm_matrix.toarray().astype(np.float64)
    np.testing.assert_allclose(k.p, np.linalg.inv(x.T @ x + k.lam * np.eye(x.shape[1])), rtol=1e-9, atol=1e-12)
    # same validator and training matrix: the first fit's sweep is reused, not run again
    assert not seen and k.reused and not m.reused
    assert k.val_scores == m.val_scores and k.describe()["sweep_reused"]


def test_ease_sweep_runs_again_for_another_split_or_validator(tiny_ml):
    calls = []

    def make(tag):
        def validator(score_fn):
            calls.append(tag)
            s = score_fn(SupportBatch(support_items=np.array([[0]]), support_ratings=np.array([[np.nan]]),
                                      users=tiny_ml.users.iloc[:1]))
            return float(s[0, 1])  # B[0, 1]: depends on lambda and on the matrix
        validator.cache = {}
        return validator

    fd0, fd1 = fit_data(make_split(tiny_ml)), fit_data(make_split(tiny_ml, SplitConfig(seed=1, mode="random")))
    assert (fd0.warm_matrix != fd1.warm_matrix).nnz  # two different training matrices
    v = make("a")
    a = EASE().fit(fd0, v)
    b = EASE().fit(fd1, v)  # same validator, other matrix: swept again, on its own matrix
    c = EASE().fit(fd0, make("c"))  # same matrix, other validator: swept again
    n = len(EASE.LAMBDAS)
    assert calls == ["a"] * 2 * n + ["c"] * n and not (a.reused or b.reused or c.reused)
    np.testing.assert_array_equal(c.b, a.b)
    x = fd1.warm_matrix.toarray().astype(np.float64)
    np.testing.assert_allclose(b.b, EASE.weights(sp.csr_matrix(x), b.lam), rtol=1e-12, atol=1e-12)
    # the cache keeps the latest matrix per validator: back to the first one sweeps again
    EASE().fit(fd0, v)
    assert len(calls) == 4 * n


def test_als_fold_in_matches_implicit_recalculate_user():
    from implicit.cpu.als import AlternatingLeastSquares

    rng = np.random.default_rng(1)
    x = sp.csr_matrix((rng.random((50, 30)) < 0.2).astype(np.float32))
    model = AlternatingLeastSquares(factors=8, regularization=0.1, alpha=2.0, iterations=5, random_state=0,
                                    num_threads=1)
    model.fit(x, show_progress=False)
    support = np.array([[1, 4, 7], [2, 3, 29]])
    user_items = sp.csr_matrix((np.ones(6, np.float32), (np.repeat([0, 1], 3), support.ravel())), shape=(2, 30))
    want = np.stack([model.recalculate_user(0, user_items[u]).ravel() for u in range(2)])
    got = als_fold_in(model.item_factors, support, 2.0 * np.ones((2, 3)), 0.1)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_mf_searches_each_unset_hyperparameter_in_turn_and_keeps_the_best(tiny_ml):
    """Coordinate search: factors from the defaults, then regularisation, then alpha, each with the
    others at their best so far; the kept factors are those of the best setting; given values stay."""
    split = make_split(tiny_ml)
    fd = fit_data(split)
    want = {"factors": 32, "regularization": 0.05, "alpha": 10.0}
    seen = []

    def validator(score_fn):
        m = score_fn.__self__
        seen.append((m.factors, m.regularization, m.alpha))
        return -sum(abs(getattr(m, n) - v) / v for n, v in want.items())  # best at `want` only

    m = ALSFoldIn().fit(fd, validator)
    assert seen == [(64, 1.0, 1.0), (8, 1.0, 1.0), (16, 1.0, 1.0), (32, 1.0, 1.0), (128, 1.0, 1.0),
                    (32, 0.05, 1.0), (32, 0.05, 10.0), (32, 0.05, 40.0)]
    assert (m.factors, m.regularization, m.alpha) == (32, 0.05, 10.0)
    assert len(m.val_scores) == len(seen)
    batch = SupportBatch(np.array([[0, 3, 5]]), np.full((1, 3), np.nan, np.float32), tiny_ml.users.iloc[:1])
    direct = ALSFoldIn(**want).fit(fd)  # no validator: exactly the given setting, trained once
    np.testing.assert_array_equal(m.score(batch), direct.score(batch))
    seen.clear()
    ALSFoldIn(factors=16, alpha=1.0).fit(fd, validator)  # only regularisation is left to choose
    assert seen == [(16, 1.0, 1.0), (16, 0.05, 1.0)]
