"""Baselines on the real ML-100K split, against an independent implementation's numbers."""

import math

import numpy as np
import pandas as pd
import pytest

from metarec.data.protocol import fit_data, metrics_for, score_episodes
from metarec.methods import create_method

pytestmark = pytest.mark.integration

# NDCG@10, binary relevance, all 189 new users, from an independent implementation (issue #4)
REFERENCE = {"popularity": (0.440, 0.407, 0.365), "itemknn": (0.433, 0.461, 0.422)}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_points(ml100k_split, name):
    s = ml100k_split
    m = create_method(name).fit(fit_data(s))
    got = []
    for k in (1, 5, 10):
        ep = s.episodes("new", k)
        got.append(float(np.nanmean(metrics_for(score_episodes(m.score, s, ep), ep)["ndcg@10"])))
    assert got == pytest.approx(REFERENCE[name], abs=5e-4)


def test_popularity_per_user_ndcg_equals_independent_recomputation(ml100k_dir, ml100k_split, ml100k):
    s, d = ml100k_split, ml100k
    raw = pd.read_csv(ml100k_dir / "u.data", sep="\t", names=["u", "i", "r", "t"])
    counts = raw[raw["t"] < s.cut_time].groupby("i").size().reindex(range(1, 1683), fill_value=0)
    m = create_method("popularity").fit(fit_data(s))
    ep = s.episodes("test", 5)
    got = metrics_for(score_episodes(m.score, s, ep), ep)["ndcg@10"]
    for row, u in enumerate(ep.users):
        hist = raw[raw["u"] == d.user_ids[u]].sort_values(["t", "i"])
        support, query = set(hist["i"][:5]), set(hist["i"][5:])
        cand = [i for i in range(1, 1683) if i not in support]
        top = sorted(cand, key=lambda i: (-counts[i], i))[:10]
        dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(top) if i in query)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(10, len(query))))
        assert got[row] == pytest.approx(dcg / idcg, abs=1e-12)
