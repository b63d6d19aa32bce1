"""Explanations: each support item's contribution is the exact leave-one-out difference, the signals
and the interaction add up to the score, and on two disjoint communities an item is explained by the
support item of its own community first."""

import numpy as np
import pytest
from fastapi.testclient import TestClient

from metarec.data import load_dataset, make_split
from metarec.data.protocol import fit_data, make_validator
from metarec.encoders import EncoderConfig
from metarec.meta.trainer import TrainConfig
from metarec.methods.metarec import MetaRecMethod
from metarec.serve.app import create_app
from tests.fixtures import run_cli, write_communities

BLOCK = 20


@pytest.fixture(scope="module")
def community_model(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    data = load_dataset("ml-100k", write_communities(root / "ml-100k", n_users=200, block=BLOCK))
    split = make_split(data)
    m = MetaRecMethod(seed=0, encoder=EncoderConfig(model=tiny_models["bert"]), out=str(root / "m"),
                      train=TrainConfig(steps=10, meta_batch=4, n_query=5, n_neg=10, n_inner_neg=5, eval_every=5))
    m.fit(fit_data(split), make_validator(split, k=3), item_ids=data.item_ids.tolist(),
          titles=data.titles(range(data.n_items)))
    return m.rec, root / "m"


def test_an_item_is_explained_by_its_own_community_first(community_model):
    rec, _ = community_model
    a, b = [1, 2], [BLOCK + 1]  # items 1..20 are one community, 21..40 the other
    user = rec.adapt(a + b, ratings=[5, 5, 5])
    ids, scores, why = user.recommend(10, explain=True)
    assert [e.item_id for e in why] == ids and np.allclose([e.score for e in why], scores)
    for e in why:
        own = a if e.item_id <= BLOCK else b
        assert e.support[0][0] in own, (e.item_id, e.support)  # the top contributor is of its own block
        other = [c for i, c in e.support if i not in own]
        assert max(c for i, c in e.support if i in own) > max(other)


def test_contributions_are_exact(community_model):
    rec, _ = community_model
    support, ratings = [3, 5, BLOCK + 4], [4.0, 5.0, 3.0]  # the fixture rates 3-5
    user = rec.adapt(support, ratings=ratings)
    items = [7, BLOCK + 9, 12]
    for e, item in zip(user.explain(items), items):
        got = dict(e.support)
        for j, s in enumerate(support):  # leave-one-out by hand: the user adapted without s
            rest = [x for x in support if x != s]
            without = rec.adapt(rest, ratings=[r for x, r in zip(support, ratings) if x != s]).score([item])[0]
            assert got[s] == pytest.approx(float(user.score([item])[0] - without), rel=1e-5, abs=1e-5)
        assert sum(e.signals.values()) == pytest.approx(e.score, rel=1e-5, abs=1e-5)
        assert set(e.signals) == {*rec.model.cfg.features, "interaction"}
    assert rec.adapt([]).explain([1])[0].support == []  # K = 0: only signals


def test_explanations_over_the_cli_and_http(community_model):
    rec, folder = community_model
    r = run_cli(["recommend", "--model", folder, "--support", "1:5,2:5", "-k", "3", "--explain"])
    assert "because you liked Movie" in " ".join(r.stdout.split())
    client = TestClient(create_app(folder))
    body = {"support": [{"item_id": 1, "rating": 5}, {"item_id": BLOCK + 1, "rating": 5}], "k": 3, "explain": True}
    got = client.post("/recommend", json=body).json()["recommendations"]
    want = rec.adapt([1, BLOCK + 1], ratings=[5, 5]).ranked(3, explain=True)
    assert [g["item_id"] for g in got] == [w["item_id"] for w in want]
    for g, w in zip(got, want):
        assert [c["item_id"] for c in g["explanation"]["support"]] == [c["item_id"] for c in w["explanation"]["support"]]
        assert g["because"] == w["because"] and g["explanation"]["support"][0]["title"].startswith("Movie")
    plain = client.post("/recommend", json={**body, "explain": False}).json()["recommendations"]
    assert all(p["explanation"] is None for p in plain)
