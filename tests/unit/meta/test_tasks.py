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
