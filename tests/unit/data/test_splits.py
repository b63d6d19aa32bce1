"""The protocol split on a fixture whose answer can be worked out by hand."""

import numpy as np
import pytest

from metarec.core.errors import ConfigError
from metarec.data import SplitConfig, make_split


def test_cut_time_and_user_sets_by_hand(tiny_ml):
    s = make_split(tiny_ml)
    # fixture: user u's first interaction is at 880_000_000 + 10_000 u, u = 1..30
    firsts = 880_000_000 + 10_000 * np.arange(1, 31)
    assert s.cut_time == pytest.approx(np.percentile(firsts, 80))
    warm_orig = sorted(tiny_ml.user_ids[s.warm_users])
    assert warm_orig == [u for u in range(1, 31) if 880_000_000 + 10_000 * u < s.cut_time]
    assert len(s.new_users) == 30 - len(warm_orig) == 6
    assert len(s.val_users) == 2 and len(s.test_users) == 4
    assert set(s.val_users).isdisjoint(s.test_users)
    assert set(s.val_users) | set(s.test_users) == set(s.new_users)
    assert (tiny_ml.timestamp[s.train_mask] < s.cut_time).all()
    assert s.train_mask.sum() == (tiny_ml.timestamp < s.cut_time).sum()


def test_support_is_first_k_in_time_with_id_tiebreak(tiny_ml):
    s = make_split(tiny_ml)
    ep = s.episodes("test", 3)
    d = tiny_ml
    for row, u in enumerate(ep.users):
        rows = np.flatnonzero(d.user == u)
        order = rows[np.lexsort((d.item_ids[d.item[rows]], d.timestamp[rows]))]
        assert ep.support_items[row].tolist() == d.item[order[:3]].tolist()
        assert sorted(ep.query_items[row].tolist()) == sorted(d.item[order[3:]].tolist())
        assert d.timestamp[order[:3]].max() <= d.timestamp[order[3:]].min()


def test_ties_broken_by_original_item_id():
    import pandas as pd
    from metarec.data.interactions import build

    ratings = pd.DataFrame({"user_id": [1, 1, 1, 2, 3], "item_id": [30, 10, 20, 10, 10],
                            "rating": [5, 4, 3, 1, 1], "timestamp": [5, 5, 1, 0, 9]})
    d = build("t", ratings, pd.DataFrame({"item_id": [30, 20, 10]}))
    s = make_split(d, SplitConfig(cut_time=6))
    items, _ = s.user_history(0)
    assert d.item_ids[items].tolist() == [20, 10, 30]


def test_seed_changes_val_test_not_the_cut(tiny_ml):
    a, b = make_split(tiny_ml, SplitConfig(seed=0)), make_split(tiny_ml, SplitConfig(seed=1))
    assert a.cut_time == b.cut_time
    np.testing.assert_array_equal(a.new_users, b.new_users)
    c = make_split(tiny_ml, SplitConfig(seed=0))
    np.testing.assert_array_equal(a.test_users, c.test_users)


def test_users_with_too_few_interactions_are_dropped_and_counted(tiny_ml):
    s = make_split(tiny_ml)
    ep = s.episodes("test", 8)  # every fixture user has exactly 8 interactions
    assert len(ep) == 0 and ep.n_dropped == len(s.test_users)
    assert s.summary(shots=(1, 8))["dropped_test_users_per_shot"]["8"] == 4


def test_relevance_threshold(tiny_ml):
    ep = make_split(tiny_ml).episodes("test", 1)
    rel = ep.relevant(4).toarray()
    for row in range(len(ep)):
        want = set(ep.query_items[row][ep.query_ratings[row] >= 4])
        assert set(np.flatnonzero(rel[row])) == want


def test_bad_config():
    with pytest.raises(ConfigError):
        SplitConfig(cut_percentile=120)
    with pytest.raises(ConfigError):
        SplitConfig(mode="sideways")


def test_warm_user_episodes_use_only_rows_after_the_cut(tiny_ml):
    s = make_split(tiny_ml)
    d = tiny_ml
    assert len(s.warm_eval_users) > 0 and set(s.warm_eval_users) <= set(s.warm_users)
    ep = s.episodes("warm", 1)
    t_of = {(u, i): t for u, i, t in zip(d.user, d.item, d.timestamp)}
    for row, u in enumerate(ep.users):
        items = list(ep.support_items[row]) + list(ep.query_items[row])
        assert all(t_of[(u, i)] >= s.cut_time for i in items)
        n_post = int(((d.user == u) & (d.timestamp >= s.cut_time)).sum())
        assert len(items) == n_post


def test_recent_train_matrix_keeps_the_latest_pre_cut_rows(tiny_ml):
    """The trend window: pre-T rows at or after the 80th percentile of pre-T timestamps, nothing after T."""
    s = make_split(tiny_ml)
    d, m = tiny_ml, s.train_mask
    lo = np.percentile(d.timestamp[m], 80)
    rec = s.train_matrix(recent=0.2).tocoo()
    want = m & (d.timestamp >= lo)
    assert rec.nnz == want.sum() > 0 and rec.nnz < m.sum()
    assert sorted(zip(rec.row, rec.col)) == sorted(zip(d.user[want], d.item[want]))
    assert s.train_matrix(recent=1.0).nnz == s.train_matrix().nnz
    with pytest.raises(ValueError, match="recent"):
        s.train_matrix(recent=0.0)
