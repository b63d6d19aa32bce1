"""Scoring at some items only (restricted catalogs) and candidate retrieval, against full-catalog
scoring as the reference: the same features, adapted weights and scores at the items scored."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from metarec.core.errors import ConfigError
from metarec.meta.learners import MetaConfig
from metarec.meta.recommender import MetaRecommender, RecommenderInfo
from metarec.models.features import ALL_FEATURES, FEATURES, ItemSide
from metarec.models.retrieval import RetrievalConfig
from metarec.models.scoring import ScoringConfig, ScoringModel


def _rec(seed=0, n_users=300, n_items=600, emb=16, ease=False, loss="softmax"):
    """A recommender over a random clustered catalog with perturbed weights (every head path has mass)."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 12, n_items)
    likes = rng.integers(0, 12, (n_users, 2))
    p = np.where((cluster[None, :] == likes[:, :1]) | (cluster[None, :] == likes[:, 1:]), 0.08, 0.005)
    x = (rng.random((n_users, n_items)) < p).astype(np.float32)
    x[:, -20:] = 0  # 20 items nobody has seen: new items
    text = rng.normal(size=(12, emb))[cluster] + rng.normal(size=(n_items, emb))
    side = ItemSide.build(text, sp.csr_matrix(x), sp.csr_matrix(x[-60:]), ease_lambda=5.0 if ease else None)
    cfg = ScoringConfig(dim=8, hidden=16, features=ALL_FEATURES if ease else FEATURES)
    gen = torch.Generator().manual_seed(seed)
    model = ScoringModel(cfg, emb, n_items, generator=gen)
    with torch.no_grad():
        for prm in model.parameters():
            prm.add_(torch.randn(prm.shape, generator=gen) * 0.3)
    return MetaRecommender(model, MetaConfig(inner_steps=3, loss=loss), side, RecommenderInfo(n_inner_neg=5), seed=seed)


def _users(n_items, k, n=6, seed=1, emb=16):
    rng = np.random.default_rng(seed)
    sup = np.stack([rng.choice(n_items, k, replace=False) for _ in range(n)]).reshape(n, k)
    return sup, rng.integers(1, 6, sup.shape).astype(np.float32), rng.normal(size=(n, emb)).astype(np.float32)


@pytest.mark.parametrize("ease", [False, True])
def test_a_restricted_side_gives_the_catalog_features_at_its_items(ease):
    side = _rec(ease=ease).side
    sup = np.array([[3, 50, 599], [7, 8, 9]])
    mask = np.array([[True, True, True], [True, True, False]])
    feats = ("knn", "content", "pop", "new", "trend") + (("ease",) if ease else ())
    full = side.support_features(sup, mask, features=feats)
    cols = np.unique(np.concatenate([sup.ravel(), [0, 1, 100, 200, 598, 599]]))
    for rows in (None, np.unique(sup)):  # every row of the sub-catalog kept, or only the support's
        sub = side.restrict(cols, rows).support_features(np.searchsorted(cols, sup), mask, features=feats)
        np.testing.assert_allclose(sub.full, full.full[:, cols], rtol=1e-6, atol=1e-6)
        items = np.searchsorted(cols, np.array([[[0, 100], [1, 598], [200, 599]]] * 2))
        np.testing.assert_allclose(side.restrict(cols, rows).leave_one_out(sub, items),
                                   side.leave_one_out(full, cols[items]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("k", [0, 1, 4])
@pytest.mark.parametrize("ease,loss", [(False, "softmax"), (True, "mse")])
def test_scoring_named_items_equals_full_catalog_scoring(k, ease, loss):
    rec = _rec(ease=ease, loss=loss)
    sup, rat, prof = _users(600, k)
    full = rec.score_batch(sup, rat, prof)
    items = np.array([599, 3, 500, 10, 3, 590])  # unsorted, a repeat, new items
    np.testing.assert_allclose(rec.score_items(sup, rat, prof, items), full[:, items], rtol=1e-5, atol=1e-5)


def test_candidates_are_scored_exactly_and_an_exhaustive_search_finds_the_exact_top_10():
    rec = _rec()
    sup, rat, prof = _users(600, 5)
    exact = rec.score_batch(sup, rat, prof)
    rec.set_retrieval(RetrievalConfig(mode="on", candidates=40, neighbours=10, popular=5, nprobe=2))
    got = rec.score_batch(sup, rat, prof)
    ok = np.isfinite(got)
    assert ok[np.arange(6)[:, None], sup].all()  # the support is scored, as on the full path
    assert (ok.sum(1) >= 40).all() and (ok.sum(1) < 600).all()
    np.testing.assert_allclose(got[ok], exact[ok], rtol=1e-5, atol=1e-5)
    # every list probed and every item asked for: the candidates are the catalog, the top 10 is exact
    rec.set_retrieval(RetrievalConfig(mode="on", candidates=600, nprobe=1024))
    assert rec.retriever.index().index.nprobe == rec.retriever.index().index.nlist
    top = lambda s: np.argsort(-np.where(np.isin(np.arange(600), sup[u]), -np.inf, s), kind="stable")[:10]  # noqa: E731
    got = rec.score_batch(sup, rat, prof)
    for u in range(6):
        assert list(top(got[u])) == list(top(exact[u]))


def test_an_adapted_user_under_retrieval_scores_explains_and_filters_any_item_exactly():
    rec = _rec()
    ids = [3, 50, 77]
    exact = rec.adapt(ids, ratings=[5, 4, 3])
    rec.set_retrieval(RetrievalConfig(mode="on", candidates=20, neighbours=5, popular=5))
    user = rec.adapt(ids, ratings=[5, 4, 3])
    outside = [int(i) for i in np.flatnonzero(~np.isfinite(user.scores))[:3]]
    assert len(outside) == 3
    np.testing.assert_allclose(user.score(outside), exact.score(outside), rtol=1e-5, atol=1e-5)
    # in stock but never retrieved: ranked by their exact scores
    got, s = user.recommend(2, candidates=outside)
    want, ws = exact.recommend(2, candidates=outside)
    assert got == want and np.allclose(s, ws, atol=1e-5)
    e, ref = user.explain(outside[:1])[0], exact.explain(outside[:1])[0]
    assert e.score == pytest.approx(ref.score, abs=1e-5)
    assert [i for i, _ in e.support] == [i for i, _ in ref.support]
    assert np.allclose([c for _, c in e.support], [c for _, c in ref.support], atol=1e-4)
    assert all(e.signals[n] == pytest.approx(ref.signals[n], abs=1e-4) for n in ref.signals)


def test_the_index_follows_the_weights_and_the_config_is_checked():
    rec = _rec()
    rec.set_retrieval(RetrievalConfig(mode="on"))
    first = rec.retriever.index()
    assert rec.retriever.index() is first
    with torch.no_grad():
        rec.model.body.w_text.mul_(2.0)  # an optimiser step or a load would do the same
    assert rec.retriever.index() is not first
    assert not RetrievalConfig().active(99_999) and RetrievalConfig().active(100_000)
    assert RetrievalConfig(mode="on").active(10) and not RetrievalConfig(mode="off", min_items=0).active(10 ** 7)
    for bad in ({"mode": "fast"}, {"candidates": 0}, {"nlist": 0}, {"min_items": -1}):
        with pytest.raises(ConfigError):
            RetrievalConfig(**bad)


def test_recommend_cli_through_candidates_lists_what_full_scoring_lists(served):
    from tests.fixtures import run_cli

    model, _ = served
    args = ["recommend", "--model", model, "--support", "3:5,7:4,9", "-k", "5", "--json"]
    off = json.loads(run_cli(args + ["--retrieval", "off"]).stdout)["recommendations"]
    on = json.loads(run_cli(args + ["--retrieval", "on"]).stdout)["recommendations"]  # a tiny catalog: all of it
    assert [r["item_id"] for r in on] == [r["item_id"] for r in off]
    assert np.allclose([r["score"] for r in on], [r["score"] for r in off], atol=1e-5)
    bad = run_cli(args + ["--retrieval", "fast"], check=False)
    assert bad.exit_code == 2 and "retrieval mode" in bad.stderr


def test_the_benchmark_method_fits_exactly_and_scores_through_candidates_when_asked(tiny_ml, tiny_models):
    from metarec.data import make_split
    from metarec.data.protocol import fit_data, make_validator
    from metarec.encoders import EncoderConfig
    from metarec.meta.trainer import TrainConfig
    from metarec.methods.metarec import MetaRecMethod

    split = make_split(tiny_ml)
    train = TrainConfig(steps=2, meta_batch=4, n_query=5, n_neg=10, n_inner_neg=5, eval_every=2)
    default = MetaRecMethod(seed=0, encoder=EncoderConfig(model=tiny_models["bert"]), train=train)
    asked = MetaRecMethod(seed=0, encoder=EncoderConfig(model=tiny_models["bert"]), train=train, retrieval="on")
    for m in (default, asked):
        m.fit(fit_data(split), make_validator(split, k=2))
    assert not default.rec.retriever.active and asked.rec.retriever.active
    assert asked.trainer.best == default.trainer.best  # validation scored the whole catalog either way
    batch = split.episodes("test", 2)
    sup = batch.support_items[:3]
    # a tiny catalog: the candidates are all of it, so the scores are the exact ones
    np.testing.assert_allclose(asked.rec.score_batch(sup), default.rec.score_batch(sup), rtol=1e-5, atol=1e-5)
