"""Side features against hand-computed values on a 3-user, 4-item log.

Users: u0 = {0, 1}, u1 = {0, 1, 2}, u2 = {1, 3}. Counts 2, 3, 1, 1; co-occurrences (0,1)=2,
(0,2)=1, (1,2)=1, (1,3)=1. Text: i0=(1,0), i1=(0,1), i2=(1,1)/sqrt2, i3=(1,-1)/sqrt2.
"""

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from metarec.models import features as features_mod
from metarec.models.features import FEATURES, ItemSide, _at, _binary, _csr_keys, _strongest, cooccurrence

KNN, CONTENT, POP, NEW, TREND = (FEATURES.index(f) for f in ("knn", "content", "pop", "new", "trend"))
R2, R3 = np.sqrt(2.0), np.sqrt(3.0)


@pytest.fixture
def side() -> ItemSide:
    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 0, 1]], np.float32))
    text = np.array([[1, 0], [0, 1], [1, 1], [1, -1]], np.float32)
    return ItemSide.build(text, x)


def test_knn_is_the_cosine_sum_over_sqrt_k(side):
    sf = side.support_features(np.array([[0, 1]]), np.ones((1, 2), bool))
    cos0 = np.array([1.0, 2 / np.sqrt(6), 1 / R2, 0.0])  # cosine of item 0 to each item
    cos1 = np.array([2 / np.sqrt(6), 1.0, 1 / R3, 1 / R3])
    np.testing.assert_allclose(sf.full[0, :, KNN], (cos0 + cos1) / R2, rtol=1e-6)
    np.testing.assert_allclose(sf.full[0, :, CONTENT], [1 / R2, 1 / R2, 1.0, 0.0], atol=1e-6)
    lp = np.log1p([2.0, 3.0, 1.0, 1.0])
    np.testing.assert_allclose(sf.full[0, :, POP], (lp - lp.mean()) / (lp.std() + 1e-6), rtol=1e-5)
    np.testing.assert_array_equal(sf.full[0, :, NEW], 0.0)
    # one support item: the plain cosine (sqrt(1) = 1); padding slots count for nothing
    one = side.support_features(np.array([[1, 3]]), np.array([[True, False]]))
    np.testing.assert_allclose(one.full[0, :, KNN], cos1, rtol=1e-6)


def test_cooccurrence_over_budget_keeps_each_items_strongest_cosines(side, monkeypatch):
    # 12 stored co-occurrences; a budget of 8 keeps 8 // 4 = 2 per item: itself, then its best cosine
    # (row 0: item 1 at 2/sqrt6 over item 2 at 1/sqrt2; row 2: item 0 at 1/sqrt2 over item 1 at 1/sqrt3)
    x = _binary(sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 0, 1]], np.float32)))  # the fixture's log
    counts = side.counts
    full = cooccurrence(x, counts)
    np.testing.assert_array_equal(full.toarray(), side.cooc.toarray())
    assert full.nnz == 12
    assert cooccurrence(x, counts, budget=12).nnz == 12  # at the budget: whole
    assert cooccurrence(x, counts, budget=11).nnz == 8  # one over: 11 // 4 = 2 per item
    kept = cooccurrence(x, counts, budget=8, block=3)  # two blocks: the first is cut after the fact
    want = {0: [0, 1], 1: [0, 1], 2: [0, 2], 3: [1, 3]}
    assert {i: list(kept.indices[kept.indptr[i]:kept.indptr[i + 1]]) for i in range(4)} == want
    np.testing.assert_array_equal(kept.data, side.cooc.toarray()[[0, 0, 1, 1, 2, 2, 3, 3], [0, 1, 0, 1, 0, 2, 1, 3]])
    # ties go to the lower item: row 1's items 2 and 3 both have cosine 1/sqrt3
    three = _strongest(full, 0, counts, 3)
    assert list(three.indices[three.indptr[1]:three.indptr[2]]) == [0, 1, 2]
    # a side built over the budget scores knn from the kept entries only
    monkeypatch.setattr(features_mod, "COOC_BUDGET", 8)
    small = ItemSide.build(np.array([[1, 0], [0, 1], [1, 1], [1, -1]], np.float32), x)
    sf = small.support_features(np.array([[1]]), np.ones((1, 1), bool))
    np.testing.assert_allclose(sf.full[0, :, KNN], [2 / np.sqrt(6), 1.0, 0.0, 0.0], rtol=1e-6)


@given(seed=st.integers(0, 10_000), density=st.floats(0.02, 0.5), budget_frac=st.floats(0.05, 1.5),
       block=st.integers(1, 40))
@settings(max_examples=40, deadline=None)
def test_cooccurrence_is_x_t_x_within_budget_and_each_rows_top_cosines_beyond(seed, density, budget_frac, block):
    rng = np.random.default_rng(seed)
    x = _binary(sp.csr_matrix((rng.random((25, 30)) < density).astype(np.float32)))
    counts = np.asarray(x.sum(axis=0)).ravel().astype(np.float64)
    dense = (x.T @ x).toarray().astype(np.float64)
    nnz = int((dense != 0).sum())
    budget = max(int(nnz * budget_frac), 1)
    got = cooccurrence(x, counts, budget=budget, block=block)
    assert got.has_canonical_format and got.dtype == np.float32
    if nnz <= budget:  # the exact product, bit for bit
        np.testing.assert_array_equal(got.toarray(), dense)
        assert got.nnz == nnz
        return
    keep = budget // 30
    for i in range(30):
        nz = np.flatnonzero(dense[i])
        cos = dense[i, nz] / np.sqrt(counts[i] * counts[nz])
        cos[nz == i] = np.inf
        best = sorted(range(len(nz)), key=lambda j: (-cos[j], nz[j]))[:max(keep, 1)]
        want = np.sort(nz[best])
        np.testing.assert_array_equal(got.indices[got.indptr[i]:got.indptr[i + 1]], want)
        np.testing.assert_array_equal(got.data[got.indptr[i]:got.indptr[i + 1]], dense[i, want])


def test_leave_one_out_scores_each_slot_from_the_others(side):
    sf = side.support_features(np.array([[0, 1]]), np.ones((1, 2), bool))
    items = np.array([[[2, 3], [2, 3]]])  # candidates for slot 0 (item 0 left out) and slot 1
    loo = side.leave_one_out(sf, items)
    np.testing.assert_allclose(loo[0, 0, :, KNN], [1 / R3, 1 / R3], rtol=1e-6)  # from item 1 alone
    np.testing.assert_allclose(loo[0, 1, :, KNN], [1 / R2, 0.0], atol=1e-6)  # from item 0 alone
    np.testing.assert_allclose(loo[0, 0, :, CONTENT], [1 / R2, -1 / R2], atol=1e-6)  # text of item 1
    np.testing.assert_allclose(loo[0, :, :, POP], sf.full[0, [[2, 3], [2, 3]], POP], rtol=1e-6)


def test_exclude_removes_the_users_own_row(side):
    # a warm user's task must see the counts without that user: u1 = {0, 1, 2} leaves counts
    # 1, 2, 0, 1 and co-occurrences (0,1)=1, (1,3)=1; item 2 becomes a new item
    ex = sp.csr_matrix(np.array([[1, 1, 1, 0]], np.float32))
    sf = side.support_features(np.array([[0, 1]]), np.ones((1, 2), bool), exclude=ex)
    np.testing.assert_allclose(sf.full[0, 3, KNN], (0.0 + 1 / R2) / R2, rtol=1e-6)
    assert sf.full[0, 2, KNN] == 0.0 and sf.full[0, 2, NEW] == 1.0
    np.testing.assert_array_equal(sf.full[0, [0, 1, 3], NEW], 0.0)


def test_new_user_fast_path_equals_the_general_path():
    """exclude=None broadcasts counts, pop and new from one row; an all-zero exclude takes the
    per-user branch (counts minus the excluded rows): the two must agree bit for bit."""
    rng = np.random.default_rng(3)
    dense = (rng.random((40, 25)) < 0.3).astype(np.float32)
    dense[:, 7] = 0  # an item with no pre-T interaction (a "new" item, zero denominators)
    x = sp.csr_matrix(dense)
    side = ItemSide.build(rng.normal(size=(25, 6)).astype(np.float32), x)
    support = rng.integers(0, 25, size=(5, 4))
    support[0, 1] = 7
    mask = np.ones((5, 4), bool)
    mask[2, 3] = False
    fast = side.support_features(support, mask)
    slow = side.support_features(support, mask, exclude=sp.csr_matrix((5, 25), dtype=np.float32))
    np.testing.assert_array_equal(fast.full, slow.full)
    np.testing.assert_array_equal(fast.cos.toarray(), slow.cos.toarray())
    np.testing.assert_array_equal(fast.cos_sum, slow.cos_sum)
    assert fast.full[0, 7, NEW] == 1.0 and fast.cos[1].sum() == 0.0  # user 0's slot 1 is the new item


@pytest.mark.parametrize("features", [("pop", "new", "trend"), ("knn", "pop"), ("content", "new"), ()])
def test_unlisted_costly_features_are_zeros_and_the_listed_ones_unchanged(features):
    """A model that reads a subset (MeLU reads none) skips the co-occurrence and text work; every
    listed column, in full and leave-one-out, is bitwise what the complete computation gives."""
    rng = np.random.default_rng(5)
    dense = (rng.random((40, 25)) < 0.3).astype(np.float32)
    side = ItemSide.build(rng.normal(size=(25, 6)).astype(np.float32), sp.csr_matrix(dense),
                          sp.csr_matrix(dense * (rng.random(dense.shape) < 0.5)))
    support = rng.integers(0, 25, size=(5, 4))
    mask = np.ones((5, 4), bool)
    mask[2, 3] = False
    ex = sp.csr_matrix(dense[:5])
    every = side.support_features(support, mask, exclude=ex)
    some = side.support_features(support, mask, exclude=ex, features=features)
    items = rng.integers(0, 25, size=(5, 4, 6))
    loo_every, loo_some = side.leave_one_out(every, items), side.leave_one_out(some, items)
    for f in FEATURES:
        j = FEATURES.index(f)
        if f in features or f in ("pop", "new", "trend"):  # the cheap ones always fill
            np.testing.assert_array_equal(some.full[..., j], every.full[..., j])
            np.testing.assert_array_equal(loo_some[..., j], loo_every[..., j])
        else:
            assert every.full[..., j].any() and loo_every[..., j].any()  # the check below can fail
            assert not some.full[..., j].any() and not loo_some[..., j].any()


def test_build_ignores_stored_zeros_and_leaves_the_input_alone():
    m = sp.csr_matrix((np.array([3.0, 0.0, 5.0], np.float32), ([0, 0, 1], [0, 1, 1])), shape=(2, 3))
    side = ItemSide.build(np.eye(3, dtype=np.float32), m)
    np.testing.assert_array_equal(side.counts, [1.0, 1.0, 0.0])  # the stored 0 at (0, 1) is no interaction
    np.testing.assert_array_equal(m.data, [3.0, 0.0, 5.0])


def test_trend_is_standardised_log_recent_counts_and_excludes_the_users_own_recent_rows():
    # recent window: u1 took items 1 and 2 in it, u2 item 1 -> recent counts 0, 2, 1, 0
    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 0, 1]], np.float32))
    recent = sp.csr_matrix(np.array([[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 0]], np.float32))
    side = ItemSide.build(np.eye(4, 2, dtype=np.float32), x, recent)
    lp = np.log1p([0.0, 2.0, 1.0, 0.0])
    mu, sd = lp.mean(), lp.std() + 1e-6
    sf = side.support_features(np.array([[0]]), np.ones((1, 1), bool))
    np.testing.assert_allclose(sf.full[0, :, TREND], (lp - mu) / sd, rtol=1e-5)
    # u1's own training task: its recent rows leave counts 0, 1, 0, 0 (standardised with the
    # window's own statistics, as a new user sees them)
    own = side.support_features(np.array([[0]]), np.ones((1, 1), bool), exclude=x[1],
                                exclude_recent=recent[1])
    np.testing.assert_allclose(own.full[0, :, TREND], (np.log1p([0.0, 1.0, 0.0, 0.0]) - mu) / sd, rtol=1e-5)
    # the trend is a property of the item: leave-one-out reads it unchanged
    loo = side.leave_one_out(sf, np.array([[[3, 1]]]))
    np.testing.assert_array_equal(loo[0, 0, :, TREND], sf.full[0, [3, 1], TREND])
    # no recent window (a log without timestamps): the feature is 0 everywhere
    assert not ItemSide.build(np.eye(4, 2, dtype=np.float32), x).support_features(
        np.array([[0]]), np.ones((1, 1), bool)).full[..., TREND].any()


def _per_task_counts(side, support, mask, exclude, exclude_recent):
    """cos [U, K, I], pop, new and trend from dense per-task counts and co-occurrences (the catalog's minus
    each task's row, as [U, I] and [I, I] arrays): the formulas support_features computed before it
    corrected only the entries a task's row changes, kept as the reference."""
    u_n, k = support.shape
    ex, ex_recent = exclude.toarray(), exclude_recent.toarray()
    counts = side.counts - ex  # [U, I]
    cooc = side.cooc.toarray().astype(np.float64)
    cos = np.zeros((u_n, k, side.n_items))
    for u in range(u_n):
        for j in np.flatnonzero(mask[u]):
            s = support[u, j]
            co = cooc[s] - ex[u, s] * ex[u]
            denom = np.sqrt(np.maximum(counts[u, s], 0) * np.maximum(counts[u], 0))
            cos[u, j] = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)
    log_z = lambda c, ref: (np.log1p(np.maximum(c, 0)) - np.log1p(ref).mean()) / (np.log1p(ref).std() + 1e-6)  # noqa: E731
    return (cos, log_z(counts, side.counts), (counts <= 0).astype(np.float64),
            log_z(side.recent - ex_recent, side.recent))


def test_excluded_rows_correct_only_their_entries_bit_for_bit():
    """A training task's features correct the catalog's counts only where its own row has entries;
    every value equals, bit for bit, the dense per-task computation, including a row stored twice
    (toarray adds duplicates: that item's count drops by 2) and items the row makes new."""
    rng = np.random.default_rng(11)
    dense = (rng.random((40, 30)) < 0.25).astype(np.float32)
    dense[:, 4] = 0
    dense[2, 4] = 1  # item 4: one user only, so that user's own task sees it as new
    recent = dense * (rng.random(dense.shape) < 0.5)
    side = ItemSide.build(rng.normal(size=(30, 6)).astype(np.float32), sp.csr_matrix(dense), sp.csr_matrix(recent))
    users = [2, 9, 17, 30]
    support = np.stack([rng.choice(np.flatnonzero(dense[u]), size=4) for u in users])
    mask = np.ones(support.shape, bool)
    mask[1, 3] = False
    ex = sp.csr_matrix(dense[users])
    ex_recent = sp.csr_matrix(recent[users])
    # store one of row 0's entries twice (CSR arrays given directly keep duplicates), on an item
    # taken by enough others that the count minus 2 is not clipped at 0
    ind, ptr = ex_recent.indices, ex_recent.indptr
    twice = ind[ptr[0] + np.argmax(side.recent[ind[ptr[0]:ptr[1]]])]
    assert side.recent[twice] >= 3
    ex_recent = sp.csr_matrix((np.ones(ex_recent.nnz + 1, np.float32), np.r_[twice, ind], np.r_[0, ptr[1:] + 1]),
                              shape=ex_recent.shape)
    assert ex_recent.nnz == ex_recent.toarray().astype(bool).sum() + 1 and ex_recent.toarray().max() == 2.0
    got = side.support_features(support, mask, exclude=ex, exclude_recent=ex_recent)
    cos, pop, new, trend = _per_task_counts(side, support, mask, ex, ex_recent)
    cos_sum = cos.sum(axis=1)  # in slot order
    np.testing.assert_array_equal(got.cos.toarray().reshape(cos.shape), cos)
    np.testing.assert_array_equal(got.cos_sum, cos_sum)
    np.testing.assert_array_equal(got.full[..., KNN], (cos_sum / np.sqrt(mask.sum(1))[:, None]).astype(np.float32))
    for j, want in ((POP, pop), (NEW, new), (TREND, trend)):
        np.testing.assert_array_equal(got.full[..., j], want.astype(np.float32))
    # leave-one-out reads each slot's own cosine back: stored entries, and items it never met (0)
    items = np.concatenate([support[..., None], rng.integers(0, 30, size=(4, 4, 12))], axis=2)
    n_others = mask.sum(1)[:, None, None] - mask[..., None]
    own = np.take_along_axis(cos, items, axis=2)
    want = np.divide(np.take_along_axis(cos_sum[:, None, :], items, axis=2) - own, np.sqrt(np.maximum(n_others, 1)),
                     out=np.zeros(items.shape), where=n_others > 0)
    assert (own == 0).any() and (own != 0).any()
    np.testing.assert_array_equal(side.leave_one_out(got, items)[..., KNN], want.astype(np.float32))
    # features built elsewhere without the search keys: leave-one-out derives them, same values
    loo = side.leave_one_out(got, items)
    np.testing.assert_array_equal(side.leave_one_out(replace(got, cos_keys=None), items), loo)
    assert got.full[0, 4, NEW] == 1.0 and not got.full[1:, 4, NEW].any()  # new only to its one user
    assert (pop != pop[0]).any() and (trend != trend[0]).any()  # the rows really differ per task


def test_exclude_equals_a_side_built_without_that_user():
    """A warm user's training-task features (own rows excluded) are exactly the features a new user
    with the same support gets from a side fitted on everyone else: the reference implementation."""
    rng = np.random.default_rng(7)
    dense = (rng.random((30, 20)) < 0.3).astype(np.float32)
    recent = dense * (rng.random(dense.shape) < 0.4)
    text = rng.normal(size=(20, 5)).astype(np.float32)
    side = ItemSide.build(text, sp.csr_matrix(dense), sp.csr_matrix(recent))
    users = [3, 11, 24]
    support = np.stack([rng.choice(np.flatnonzero(dense[u]), size=3, replace=False) for u in users])
    mask = np.ones(support.shape, bool)
    mask[1, 2] = False
    got = side.support_features(support, mask, exclude=sp.csr_matrix(dense[users]),
                                exclude_recent=sp.csr_matrix(recent[users]))
    for row, u in enumerate(users):
        keep = np.arange(30) != u
        ref_side = ItemSide.build(text, sp.csr_matrix(dense[keep]), sp.csr_matrix(recent[keep]))
        ref = ref_side.support_features(support[row:row + 1], mask[row:row + 1])
        cols = [KNN, CONTENT, NEW]
        np.testing.assert_allclose(got.full[row][:, cols], ref.full[0][:, cols], rtol=1e-6, atol=1e-7)
        k = support.shape[1]
        np.testing.assert_allclose(got.cos[row * k:(row + 1) * k].toarray(), ref.cos.toarray(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(got.cos_sum[row], ref.cos_sum[0], rtol=1e-12, atol=1e-15)
        # popularity and trend are standardised with the statistics fixed at fit time (the whole
        # log), so compare the counts they encode
        for col, which, ref_counts in ((POP, "counts", ref_side.counts), (TREND, "recent", ref_side.recent)):
            mu, sd = side.pop_stats(which)
            np.testing.assert_allclose(np.expm1(got.full[row][:, col].astype(np.float64) * sd + mu), ref_counts,
                                       rtol=1e-4, atol=1e-4)


def test_ease_feature_sums_clipped_ease_weights_excludes_the_own_row_and_leaves_one_out():
    """The optional ease feature against the EASE baseline's weights (the reference implementation):
    scale * sum_s max(B[s, i], 0) / sqrt(K); a training task's Sherman-Morrison exclusion equals a
    side fitted without that user; leave-one-out equals the feature of the support minus slot j."""
    from metarec.methods.ease import EASE
    from metarec.models.features import ALL_FEATURES

    rng = np.random.default_rng(11)
    dense = (rng.random((30, 20)) < 0.3).astype(np.float32)
    text = rng.normal(size=(20, 5)).astype(np.float32)
    lam = 5.0
    side = ItemSide.build(text, sp.csr_matrix(dense), ease_lambda=lam)
    assert side.ease_lambda == lam
    # an inverse computed elsewhere (the EASE baseline's) is used as given, not computed again
    given = side.ease_p.copy()
    reused = ItemSide.build(text, sp.csr_matrix(dense), ease_lambda=lam, ease_p=given)
    assert reused.ease_p is given and reused.ease_scale == side.ease_scale
    with pytest.raises(ValueError, match="catalog has 20 items"):
        ItemSide.build(text, sp.csr_matrix(dense), ease_lambda=lam, ease_p=given[:5, :5])
    ease = ALL_FEATURES.index("ease")
    b = np.maximum(EASE.weights(sp.csr_matrix(dense), lam), 0.0) * side.ease_scale
    assert (b > 0).any() and side.ease_scale > 0
    users = [2, 9, 17]
    support = np.stack([rng.choice(np.flatnonzero(dense[u]), size=3, replace=False) for u in users])
    mask = np.ones(support.shape, bool)
    mask[1, 2] = False
    sf = side.support_features(support, mask, features=ALL_FEATURES)
    assert sf.full.shape[-1] == len(ALL_FEATURES)
    for row in range(len(users)):
        s = support[row][mask[row]]
        np.testing.assert_allclose(sf.full[row, :, ease], b[s].sum(0) / np.sqrt(len(s)), rtol=1e-5, atol=1e-7)
    # without "ease" asked for, the default columns only
    assert side.support_features(support, mask).full.shape[-1] == len(FEATURES)

    got = side.support_features(support, mask, exclude=sp.csr_matrix(dense[users]), features=ALL_FEATURES)
    for row, u in enumerate(users):
        ref_side = ItemSide.build(text, sp.csr_matrix(np.delete(dense, u, axis=0)), ease_lambda=lam)
        ref_side.ease_scale = side.ease_scale  # the scale is fixed at fit time, as for popularity
        ref = ref_side.support_features(support[row:row + 1], mask[row:row + 1], features=ALL_FEATURES)
        np.testing.assert_allclose(got.full[row, :, ease], ref.full[0, :, ease], rtol=1e-5, atol=1e-7)
        assert not np.allclose(got.full[row, :, ease], sf.full[row, :, ease])  # the exclusion changes it

    items = rng.integers(0, 20, size=(3, 3, 4))
    loo = side.leave_one_out(sf, items)
    for row in range(3):
        for j in range(3):
            if not mask[row, j]:
                continue
            others = [support[row, i] for i in range(3) if i != j and mask[row, i]]
            expect = b[others].sum(0) / np.sqrt(len(others))
            np.testing.assert_allclose(loo[row, j, :, ease], expect[items[row, j]], rtol=1e-5, atol=1e-7)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 9), st.integers(0, 40), st.integers(0, 2**31 - 1))
def test_element_lookup_by_search_equals_the_dense_matrix(n_rows, n_cols, nnz, seed):
    """`_at` over `_csr_keys` reads m[r, c] for any CSR, including unsorted rows and entries stored
    twice (summed, as toarray() and scipy's lookup sum them), and 0 where nothing is stored."""
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, n_rows, nnz), rng.integers(0, n_cols, nnz)
    per_row = np.bincount(rows, minlength=n_rows)
    order = np.argsort(rows, kind="stable")  # grouped by row, columns left in random order
    m = sp.csr_matrix((rng.integers(-3, 4, nnz).astype(np.float64)[order], cols[order], np.r_[0, np.cumsum(per_row)]),
                      shape=(n_rows, n_cols))
    want_r, want_c = rng.integers(0, n_rows, 30), rng.integers(0, n_cols, 30)
    got = _at(*_csr_keys(m), want_r.astype(np.int64) * n_cols + want_c)
    np.testing.assert_array_equal(got, m.toarray()[want_r, want_c])


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 30), st.integers(1, 6), st.floats(0.05, 0.6), st.booleans(), st.integers(0, 2**31 - 1))
def test_excluded_rows_equal_the_dense_per_task_counts_on_random_logs(n_items, k, density, partial, seed):
    """The same check on random logs and support sizes: excluded rows that are a task's whole row or
    only part of it (partial), support items the row does not hold, padded slots."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((12, n_items)) < density).astype(np.float32)
    recent = dense * (rng.random(dense.shape) < 0.5)
    side = ItemSide.build(rng.normal(size=(n_items, 4)).astype(np.float32), sp.csr_matrix(dense),
                          sp.csr_matrix(recent))
    users = rng.choice(12, size=4, replace=False)
    keep = rng.random((4, n_items)) < 0.5 if partial else np.ones((4, n_items), bool)
    ex, ex_recent = sp.csr_matrix(dense[users] * keep), sp.csr_matrix(recent[users] * keep)
    support = rng.integers(0, n_items, size=(4, k))
    mask = rng.random((4, k)) < 0.8
    got = side.support_features(support, mask, exclude=ex, exclude_recent=ex_recent)
    cos, pop, new, trend = _per_task_counts(side, support, mask, ex, ex_recent)
    np.testing.assert_array_equal(got.cos.toarray().reshape(cos.shape), cos)
    np.testing.assert_array_equal(got.cos_sum, cos.sum(axis=1))
    for j, want in ((POP, pop), (NEW, new), (TREND, trend)):
        np.testing.assert_array_equal(got.full[..., j], want.astype(np.float32))
