"""The real ML-100K release: counts, text decoding, and a no-leakage proof of the split."""

import json

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.integration


def test_info(ml100k):
    info = ml100k.info()
    assert (info["n_users"], info["n_items"], info["n_interactions"]) == (943, 1682, 100000)
    assert (info["rating_min"], info["rating_max"]) == (1.0, 5.0)
    assert ml100k.titles(ml100k.item_index([543]))[0] == "Misérables, Les (1995)"
    assert ml100k.items["genres"][0] == ("Animation", "Children's", "Comedy")


def _independent_split(ml100k_dir, seed=0):
    """Recompute the protocol split from the raw file with pandas only."""
    raw = pd.read_csv(ml100k_dir / "u.data", sep="\t", names=["u", "i", "r", "t"])
    first = raw.groupby("u")["t"].min()
    cut = np.percentile(first.to_numpy(), 80)
    warm = set(first.index[first < cut])
    new = sorted(first.index[first >= cut])
    train = raw[raw["t"] < cut]
    new_items = set(range(1, 1683)) - set(train["i"])
    counts = raw[raw["u"].isin(new)].groupby("u").size()
    return cut, warm, new, train, new_items, counts


def test_split_matches_independent_recomputation(ml100k_dir, ml100k, ml100k_split):
    s = ml100k_split
    cut, warm, new, train, new_items, counts = _independent_split(ml100k_dir)
    assert s.cut_time == pytest.approx(cut) and s.cut_time == pytest.approx(889387319.6)
    assert set(ml100k.user_ids[s.warm_users]) == warm and len(warm) == 754
    assert sorted(ml100k.user_ids[s.new_users]) == new and len(new) == 189
    assert s.train_mask.sum() == len(train) == 80393
    assert set(ml100k.item_ids[s.new_items]) == new_items and len(new_items) == 58
    test_orig = set(ml100k.user_ids[s.test_users])
    for k in (1, 3, 5, 10):
        assert len(s.episodes("test", k)) == sum(counts[u] >= k + 1 for u in test_orig)


def test_no_leakage(ml100k, ml100k_split):
    s, d = ml100k_split, ml100k
    # every training row is before T, and belongs to a warm user
    assert (d.timestamp[s.train_mask] < s.cut_time).all()
    assert np.isin(d.user[s.train_mask], s.warm_users).all()
    # no new user has a single row on the fitting side
    assert not np.isin(d.user[s.train_mask], s.new_users).any()
    # validation and test users are disjoint and together are the new users
    assert not set(s.val_users) & set(s.test_users)
    assert set(s.val_users) | set(s.test_users) == set(s.new_users)
    # every support row precedes (or ties, then lower id) every query row of that user
    t_of = {(u, i): t for u, i, t in zip(d.user, d.item, d.timestamp)}
    for k in (1, 5, 10):
        ep = s.episodes("test", k)
        for row, u in enumerate(ep.users):
            ts = [t_of[(u, i)] for i in ep.support_items[row]]
            tq = [t_of[(u, i)] for i in ep.query_items[row]]
            assert max(ts) <= min(tq)
            assert not set(ep.support_items[row]) & set(ep.query_items[row])


def _cli(*args):
    from tests.fixtures import run_cli

    return json.loads(run_cli(list(args)).stdout)


def test_cli_info_and_split_contract(ml100k_dir):
    info = _cli("data", "info", "--dataset", "ml-100k", "--data-dir", str(ml100k_dir), "--json")
    assert (info["n_users"], info["n_items"], info["n_interactions"]) == (943, 1682, 100000)
    for key in ("rating_min", "rating_max", "t_min", "t_max"):
        assert key in info
    sp = _cli("data", "split", "--dataset", "ml-100k", "--data-dir", str(ml100k_dir), "--seed", "0", "--json")
    assert sp["n_warm_users"] == 754 and sp["n_new_users"] == 189
    assert sp["n_val_users"] + sp["n_test_users"] == 189 and sp["n_val_users"] == 63
    assert sp["n_new_items"] == 58 and sp["n_train_interactions"] == 80393
    assert set(sp["users_per_shot"]) == {"1", "3", "5", "10"}
