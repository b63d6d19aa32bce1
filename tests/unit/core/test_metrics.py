"""Metrics against hand-computed cases: ties, empty relevance, k larger than the catalog."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metarec.core import metrics as M

INF = -np.inf


def test_top_k_orders_by_score_then_index():
    s = np.array([[0.1, 0.9, 0.5, 0.9, INF]])
    assert M.top_k(s, 3).tolist() == [[1, 3, 2]]
    # ties across the partition boundary: the lower index wins
    s = np.array([[1.0, 1.0, 1.0, 1.0, 0.0]])
    assert M.top_k(s, 2).tolist() == [[0, 1]]


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40), st.integers(1, 45), st.integers(0, 10_000))
def test_top_k_matches_a_full_stable_sort(n_users, n_items, k, seed):
    """The selection (torch.topk, exact sort where the k-th value ties) against sorting every item
    by (score desc, index asc), with many ties and excluded items."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 5, size=(n_users, n_items)).astype(float)
    s[rng.random(s.shape) < 0.2] = INF
    want = np.lexsort((np.broadcast_to(np.arange(n_items), s.shape), -s), axis=1)[:, :k]
    want = np.where(np.isneginf(np.take_along_axis(s, want, axis=1)), -1, want)
    np.testing.assert_array_equal(M.top_k(s, k), want)
    np.testing.assert_array_equal(M.top_k(s.astype(np.float32), k), want)  # ranked as given, not widened
    np.testing.assert_array_equal(M.top_k(s.astype(np.float32).astype(object), k), want)  # other types: float64
    # the same from a reversed (negative-stride) view and a read-only array
    rev = s[:, ::-1]
    np.testing.assert_array_equal(M.top_k(rev, k), M.top_k(rev.copy(), k))
    s.flags.writeable = False
    np.testing.assert_array_equal(M.top_k(s, k), want)


def test_top_k_ranks_nan_scores_last():
    s = np.array([[np.nan, 1.0, 2.0, np.nan, 0.5]])
    assert M.top_k(s, 3).tolist() == [[2, 1, 4]]
    s = np.array([[np.inf, 1.0, INF, 2.0], [0.0, np.inf, 3.0, 1.0]])  # +inf beside -inf: the numpy path
    assert M.top_k(s, 2).tolist() == [[0, 3], [1, 2]]


def test_top_k_k_larger_than_catalog_marks_excluded():
    s = np.array([[0.2, INF, 0.7]])
    assert M.top_k(s, 10).tolist() == [[2, 0, -1]]


def test_hand_computed_single_user():
    # ranking: item 1 (0.9), item 3 (0.8), item 0 (0.5), item 2 (0.1); relevant {3, 2}
    s = np.array([[0.5, 0.9, 0.1, 0.8]])
    rel = np.array([[0, 0, 1, 1]], bool)
    m = M.ranking_metrics(s, rel, ks=(2, 4))
    assert m["precision@2"][0] == pytest.approx(0.5)
    assert m["recall@2"][0] == pytest.approx(0.5)
    assert m["hit@2"][0] == 1.0
    # DCG@2 = 1/log2(3); IDCG@2 = 1 + 1/log2(3)
    assert m["ndcg@2"][0] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    # AP@2: one hit at rank 2 with precision 1/2, divided by min(R=2, k=2)
    assert m["map@2"][0] == pytest.approx(0.25)
    # @4: hits at ranks 2 and 4
    assert m["ndcg@4"][0] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))
    assert m["map@4"][0] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert m["recall@4"][0] == 1.0


def test_ties_are_not_resorted_inside_top_k():
    # MAMO's bug: sorting relevance inside the top-k. Here relevant item 2 ties item 0 and loses.
    s = np.array([[1.0, 0.0, 1.0]])
    rel = np.array([[0, 0, 1]], bool)
    assert M.ndcg_at_k(s, rel, 1)[0] == 0.0
    assert M.ndcg_at_k(s, rel, 2)[0] == pytest.approx(1 / math.log2(3))


def test_empty_relevance_is_nan():
    s = np.array([[0.3, 0.2], [0.1, 0.9]])
    rel = np.array([[0, 0], [1, 0]], bool)
    m = M.ranking_metrics(s, rel, (1,))
    for name in ("precision@1", "recall@1", "ndcg@1", "map@1", "hit@1"):
        assert math.isnan(m[name][0])
    assert m["ndcg@1"][1] == 0.0


def test_k_larger_than_catalog():
    s = np.array([[0.9, 0.1, 0.5]])
    rel = np.array([[0, 1, 0]], bool)
    m = M.ranking_metrics(s, rel, (10,))
    assert m["precision@10"][0] == pytest.approx(0.1)
    assert m["recall@10"][0] == 1.0
    assert m["ndcg@10"][0] == pytest.approx(1 / math.log2(4))
    assert m["map@10"][0] == pytest.approx(1 / 3)


def test_excluded_items_are_neither_ranked_nor_relevant():
    s = np.array([[INF, 0.2, 0.1]])
    rel = np.array([[1, 0, 1]], bool)  # item 0 is a support item: it cannot count
    m = M.ranking_metrics(s, rel, (1, 2))
    assert m["recall@2"][0] == 1.0
    assert m["ndcg@1"][0] == 0.0


def test_auc_hand_case_with_ties_and_exclusion():
    s = np.array([[0.9, 0.5, 0.5, 0.1, INF]])
    rel = np.array([[0, 1, 0, 1, 1]], bool)
    # pos {1 (0.5), 3 (0.1)}, neg {0 (0.9), 2 (0.5)}: pairs (1>0:0, 1=2:0.5, 3<0:0, 3<2:0) -> 0.125
    assert M.auc(s, rel)[0] == pytest.approx(0.125)


def test_mae_rmse_and_long_tail():
    assert M.mae([1, 2, 4], [2, 2, 2]) == pytest.approx(1.0)
    assert M.rmse([1, 2, 4], [2, 2, 2]) == pytest.approx(math.sqrt(5 / 3))
    pop = np.array([100, 50, 1, 0, 0])  # head = ceil(0.2*5) = 1 item: item 0
    s = np.array([[5, 4, 3, 2, 1.0]])
    assert M.long_tail_share(s, pop, k=2)[0] == pytest.approx(0.5)


def _reference_ndcg(scores, rel, k):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    order = [i for i in order if scores[i] != -np.inf][:k]
    dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(order) if rel[i])
    n_rel = sum(1 for i in range(len(scores)) if rel[i] and scores[i] != -np.inf)
    idcg = sum(1 / math.log2(r + 2) for r in range(min(n_rel, k)))
    return float("nan") if n_rel == 0 else dcg / idcg


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 12), st.integers(1, 15), st.integers(0, 10_000))
def test_vectorised_ndcg_matches_slow_reference(n_users, n_items, k, seed):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 4, size=(n_users, n_items)).astype(float)  # many ties
    s[rng.random(s.shape) < 0.15] = -np.inf
    rel = rng.random(s.shape) < 0.3
    got = M.ndcg_at_k(s, rel, k)
    want = [_reference_ndcg(s[u], rel[u], k) for u in range(n_users)]
    np.testing.assert_allclose(got, want, equal_nan=True)
