"""One contract for every registered method, on a dataset whose right answer is known.

Every method (a new one too: the cases come from the registry) must score the whole catalog with
finite numbers (also for a user with no interactions yet, unless it declares `min_support`, and then
refuse such a user by name), give the same scores again from the same seed, and score a user the
same whether they come alone or in a batch. On two disjoint communities (tests.fixtures.write_communities), the
methods that personalise must put only the user's own community's unseen items in the top 10, at
the validation shot count (K = 3) and above. (At K = 1 metarec's inner loop, tuned at K = 3, can move
a head too far on one interaction; tests/unit/meta/test_recommender.py covers adaptation itself.)
"""

from __future__ import annotations

import numpy as np
import pytest

from metarec.data.protocol import fit_data, make_validator, support_batch
from metarec.core.errors import ConfigError, MethodNotApplicableError
from metarec.data import load_dataset, make_split
from metarec.methods import create_method
from metarec.methods.registry import available_methods
from tests.fixtures import write_communities

BLOCK = 20
# methods that read the support set's collaborative signal; the others are not expected to separate
# the communities (popularity and random ignore the user, content-knn reads titles that name no
# community, MeLU's published learning rates barely move it in a test-sized budget)
PERSONALISED = ("itemknn", "ease", "als", "metarec", "pooled-finetune")
# random draws from one generator in call order: its scores depend on what was scored before
ORDER_DEPENDENT = ("random",)


@pytest.fixture(scope="module")
def communities(tmp_path_factory):
    data = load_dataset("ml-100k", write_communities(tmp_path_factory.mktemp("comm") / "ml-100k",
                                                     n_users=400, block=BLOCK))
    split = make_split(data)
    return split, fit_data(split), make_validator(split, k=3)


def _small(name: str, tiny_models: dict) -> dict:
    """Constructor arguments that keep a method test-sized (its maths unchanged)."""
    from metarec.encoders import EncoderConfig
    from metarec.meta.trainer import TrainConfig

    enc = EncoderConfig(model=tiny_models["bert"])
    budget = dict(steps=10, meta_batch=4, n_query=5, n_neg=10, n_inner_neg=5, eval_every=5)
    if name == "metarec":
        return {"encoder": enc, "train": TrainConfig(**budget)}
    if name == "pooled-finetune":
        return {"encoder": enc, "train": TrainConfig(meta=False, **budget)}
    if name == "content-knn":
        return {"encoder": enc}
    if name == "melu":
        return {"steps": 10, "meta_batch": 4}
    if name == "als":
        # two communities, two factors: more would also fit the noise inside each block, whose
        # negative scores fold-in then ranks below the other block's zeros (as it should)
        return {"factors": 2}
    return {}


@pytest.fixture(scope="module")
def fitted(communities, tiny_models):
    """name -> (method, the same method fitted again from the same seed), fitted once per module."""
    _, fd, val = communities
    return {name: tuple(create_method(name, seed=0, **_small(name, tiny_models)).fit(fd, val) for _ in range(2))
            for name in available_methods()}


def test_the_contract_covers_every_registered_method(fitted):
    assert set(PERSONALISED) <= set(fitted) and set(ORDER_DEPENDENT) <= set(fitted)
    assert {"popularity", "itemknn", "ease", "als", "random", "content-knn", "metarec", "pooled-finetune",
            "melu"} <= set(fitted)


# the methods that rank only from a user's interactions: at K = 0 they refuse (every item would score
# the same), and the runner leaves them out of K = 0
NEEDS_SUPPORT = ("itemknn", "ease", "als", "content-knn")


@pytest.mark.parametrize("k", [0, 1, 3])  # K = 0: a user with no interactions yet
def test_scores_cover_the_catalog_are_finite_and_repeat_with_the_seed(communities, fitted, k):
    split = communities[0]
    ep = split.episodes("test", k)
    assert len(ep) >= 5
    assert {n for n, (m, _) in fitted.items() if m.min_support > 0} == set(NEEDS_SUPPORT)
    for name, (a, b) in fitted.items():
        batch = support_batch(split, ep)
        if k < a.min_support:
            with pytest.raises(MethodNotApplicableError, match="needs at least 1"):
                a.score(batch)
            continue
        sa, sb = np.asarray(a.score(batch)), np.asarray(b.score(batch))
        assert sa.shape == (len(ep), split.data.n_items), name
        assert np.isfinite(sa).all(), name
        np.testing.assert_array_equal(sa, sb, err_msg=f"{name}: a second fit from the same seed scores differently")


def test_a_user_scores_the_same_alone_as_in_a_batch(communities, fitted):
    split = communities[0]
    ep = split.episodes("test", 3)
    for name, (m, _) in fitted.items():
        if name in ORDER_DEPENDENT:
            continue
        together = np.asarray(m.score(support_batch(split, ep)), np.float64)
        for row in range(len(ep)):
            alone = np.asarray(m.score(support_batch(split, ep, np.array([row]))), np.float64)[0]
            np.testing.assert_allclose(alone, together[row], rtol=1e-5, atol=1e-6 * np.abs(together).max(),
                                       err_msg=f"{name}: user {row} alone")


@pytest.mark.parametrize("k", [3, 5])
def test_personalised_methods_recommend_only_the_users_own_community(communities, fitted, k):
    split = communities[0]
    ep = split.episodes("test", k)
    block_of = np.arange(split.data.n_items) >= BLOCK  # item index -> community (0 or 1)
    own = block_of[ep.support_items[:, 0]]
    assert (block_of[ep.support_items] == own[:, None]).all()  # the fixture keeps users in one block
    assert (own == 0).any() and (own == 1).any()
    for name in PERSONALISED:
        s = np.asarray(fitted[name][0].score(support_batch(split, ep)), np.float64)
        s[np.repeat(np.arange(len(ep)), k), ep.support_items.ravel()] = -np.inf
        top = np.argsort(-s, axis=1, kind="stable")[:, :10]
        wrong = block_of[top] != own[:, None]
        assert not wrong.any(), f"{name} at K={k}: {wrong.sum()} of {wrong.size} top-10 items from the other community"


def test_popularity_does_not_separate_the_communities(communities, fitted):
    """The check above can fail: a method that ignores the user mixes both communities in its top 10."""
    split = communities[0]
    ep = split.episodes("test", 3)
    block_of = np.arange(split.data.n_items) >= BLOCK
    s = np.asarray(fitted["popularity"][0].score(support_batch(split, ep)), np.float64)
    top = np.argsort(-s, axis=1, kind="stable")[:, :10]
    assert (block_of[top] != block_of[ep.support_items[:, :1]]).any()


def test_one_method_per_module_and_aliases_resolve():
    from metarec.methods.registry import method_class, register

    for name in available_methods():
        cls = method_class(name)
        others = [n for n in available_methods() if n != name and method_class(n).__module__ == cls.__module__
                  and not issubclass(method_class(n), cls) and not issubclass(cls, method_class(n))]
        assert not others, f"{cls.__module__} holds {name} and {others}"
    assert method_class("mf") is method_class("als") and "mf" not in available_methods()

    class Clash(method_class("popularity")):
        name = "mf"  # an alias is taken like a name

    with pytest.raises(ConfigError, match="'mf' is already registered"):
        register(Clash)
