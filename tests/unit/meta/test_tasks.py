"""Task sampling: what the inner loop may and may not see."""

import numpy as np

from metarec.meta.tasks import sample_tasks
from tests.unit.meta.helpers import tiny_problem


def test_inner_negatives_exclude_the_support_but_not_later_items():
    """As at test time, the inner loop knows only the support set: its negatives never hit a support
    item, and may hit the user's later (query) items, which a new user's inner loop cannot rule out."""
    model, _, _, md = tiny_problem(seed=0, n_users=20, n_items=30)
    b = sample_tasks(md, model.cfg, np.random.default_rng(5), n_tasks=20, k=3, n_query=50, n_neg=10,
                     n_inner_neg=20, p_first=1.0)
    items = b.inner.items.numpy()
    neg = (b.inner_labels.numpy() == 0) & (b.inner_mask.numpy() > 0)
    sup = b.inner.support.numpy()
    qry = b.outer.items.numpy()[:, :50]
    qmask = b.outer_mask.numpy()[:, :50] > 0
    hits_later = 0
    for t in range(len(items)):
        negs = set(items[t][neg[t]].tolist())
        assert not negs & set(sup[t].tolist())
        hits_later += len(negs & set(qry[t][qmask[t]].tolist()))
    assert hits_later > 0


def _user_of(md, support) -> int:
    """The one user whose history starts with `support` (p_first=1: windows start at the first item)."""
    found = [u for u, (items, _) in enumerate(md.sequences) if list(items[:len(support)]) == list(support)]
    assert len(found) == 1
    return found[0]


def test_windows_follow_each_users_history_and_outer_negatives_avoid_it():
    """Support = the first K interactions (p_first=1), query = the ones after them, padded and masked;
    outer negatives are never one of the user's own pre-T items (masked out if drawn)."""
    model, _, _, md = tiny_problem(seed=1, n_users=20, n_items=30)
    k, n_query, n_neg = 3, 4, 25
    b = sample_tasks(md, model.cfg, np.random.default_rng(2), n_tasks=12, k=k, n_query=n_query, n_neg=n_neg,
                     n_inner_neg=4, p_first=1.0, loss="mse")
    sup, items = b.inner.support.numpy(), b.outer.items.numpy()
    labels, mask = b.outer_labels.numpy(), b.outer_mask.numpy()
    rows = md.user_rows.toarray()
    for t in range(len(sup)):
        u = _user_of(md, sup[t])
        seq, ratings = md.sequences[u]
        q = seq[k:k + n_query]
        np.testing.assert_array_equal(items[t, :len(q)], q)
        np.testing.assert_array_equal(mask[t, :n_query], np.arange(n_query) < len(q))
        np.testing.assert_array_equal(labels[t, :len(q)], ratings[k:k + n_query])  # mse: the ratings
        neg, ok = items[t, n_query:], mask[t, n_query:] > 0
        np.testing.assert_array_equal(ok, rows[u, neg] == 0)
        assert (labels[t, n_query:] == 0).all()


def test_whole_catalog_outer_candidates_mask_exactly_the_users_own_items():
    model, _, _, md = tiny_problem(seed=2, n_users=20, n_items=30)
    b = sample_tasks(md, model.cfg, np.random.default_rng(3), n_tasks=6, k=2, n_query=3, n_neg=-1,
                     n_inner_neg=4, p_first=1.0)
    items, mask = b.outer.items.numpy(), b.outer_mask.numpy()
    assert items.shape == (6, 3 + 30)
    rows = md.user_rows.toarray()
    for t, s in enumerate(b.inner.support.numpy()):
        u = _user_of(md, s)
        np.testing.assert_array_equal(items[t, 3:], np.arange(30))
        np.testing.assert_array_equal(mask[t, 3:] > 0, rows[u] == 0)  # neither positive nor negative


def test_popularity_weighted_negatives_follow_count_to_the_power():
    """neg_power=1 draws negatives with probability proportional to (count + 1); uniform draws do not
    match that distribution, so the check can fail."""
    model, _, _, md = tiny_problem(seed=3, n_users=20, n_items=30)
    want = (md.side.counts + 1.0) / (md.side.counts + 1.0).sum()

    def freq(power):
        b = sample_tasks(md, model.cfg, np.random.default_rng(4), n_tasks=400, k=2, n_query=3, n_neg=25,
                         n_inner_neg=2, neg_power=power)
        drawn = b.outer.items.numpy()[:, 3:].ravel()
        return np.bincount(drawn, minlength=30) / len(drawn)

    assert np.abs(freq(1.0) - want).max() < 0.01
    assert np.abs(freq(0.0) - want).max() > 0.02


def test_recent_fraction_draws_only_the_latest_arrivals():
    model, _, _, md = tiny_problem(seed=4, n_users=20, n_items=30)
    md.recency = np.linspace(0.0, 1.0, 20)  # user u arrived u-th
    b = sample_tasks(md, model.cfg, np.random.default_rng(5), n_tasks=30, k=2, n_query=3, n_neg=5,
                     n_inner_neg=2, p_first=1.0, recent_fraction=0.25)
    users = {_user_of(md, s) for s in b.inner.support.numpy()}
    assert users <= {u for u in range(20) if md.recency[u] >= 0.75} and len(users) > 1
