"""metarec's start search goes past a grid edge while that edge wins, and only then.

The validator here is a known function of the candidate (its content weight and inner rate), so
the search's path and answer can be worked out by hand; the search itself is the real one.
"""

import math

import pytest

from metarec.data.protocol import fit_data
from metarec.data import SplitConfig, make_split
from metarec.encoders import EncoderConfig
from metarec.meta.trainer import TrainConfig
from metarec.meta.start import StartSearch
from metarec.meta.train import MetaRec
from metarec.methods.metarec import MetaRecMethod


def _search(tiny_ml, tiny_models, objective, sampled: bool = False):
    """Fit metarec (no meta-steps) with a validator that scores each start by objective(content, lr);
    `sampled`: the validator claims 1,000 users, so the search scores a sample first (here the same
    function) and only its best few on every user."""
    split = make_split(tiny_ml, SplitConfig(seed=0))

    def validator(score_fn) -> float:
        method = getattr(score_fn, "__self__", None)
        if not isinstance(method, MetaRec):  # the ease feature's own ridge search
            return 0.0
        at = method.rec.model.cfg.features.index("content")
        return objective(float(method.rec.model.head.w_feat[at].detach()), method.rec.meta.inner_lr)

    if sampled:
        validator.n_users, validator.sample = 1000, lambda n: validator

    m = MetaRecMethod(seed=0, train=TrainConfig(steps=0), encoder=EncoderConfig(model=tiny_models["bert"]))
    m.fit(fit_data(split), validator)
    tried = m.prior["val_ndcg@10"]  # "lr=R knn=..,content=C,.." -> score, every candidate scored
    contents = sorted({float(k.split("content=")[1].split(",")[0]) for k in tried})
    rates = sorted({float(k.split(" ")[0][3:]) for k in tried})
    assert ("sample_users" in m.prior) == sampled
    return m.prior["chosen"]["content"], m.prior["inner_lr"], contents, rates


def _peak(content_best: float, lr_best: float):
    return lambda c, lr: -abs(math.log(c + 1e-3) - math.log(content_best)) - abs(math.log(lr) - math.log(lr_best))


@pytest.mark.parametrize("sampled", [False, True])
def test_the_search_follows_a_winning_edge_to_the_peak(tiny_ml, tiny_models, sampled):
    # content 2 (the grid's top) wins -> 8 -> 32 wins -> 128 loses; rate 0.1 (the bottom) wins ->
    # 0.0333 -> 0.0111 wins -> 0.0037 is below lr_range, so the search stops there
    content, lr, contents, rates = _search(tiny_ml, tiny_models, _peak(32.0, 0.011), sampled)
    assert content == 32.0 and lr == 0.0111
    assert contents == [0.0, 0.5, 2.0, 8.0, 32.0, 128.0]
    assert rates == [0.0111, 0.0333, 0.1, 0.5]


def test_an_interior_winner_adds_no_candidate(tiny_ml, tiny_models):
    content, lr, contents, rates = _search(tiny_ml, tiny_models, _peak(0.6, 0.3))
    assert content == 0.5 and contents == [0.0, 0.5, 2.0]  # 0.5 is inside the grid: nothing past 2
    # 0.5 beats 0.1 for a peak at 0.3 and is the top rate, so 1.5 is tried, loses, and ends it
    assert lr == 0.5 and rates == [0.1, 0.5, 1.5]


def test_the_extension_is_bounded(tiny_ml, tiny_models):
    content, lr, contents, rates = _search(tiny_ml, tiny_models, lambda c, lr: c + lr)  # more is always better
    assert content == StartSearch().content_max == contents[-1] == 128.0
    assert lr == 4.5 and rates == [0.1, 0.5, 1.5, 4.5]  # 13.5 would leave lr_range
    assert StartSearch().lr_range[1] == pytest.approx(5.0)


class _ByK:
    """A validator at support size `k` whose score is a known function of the start the model
    applies at that K (its popularity weight and inner rate): each anchor has its own peak."""

    n_users = 100

    def __init__(self, k: int, peaks: dict[int, tuple[float, float]]) -> None:
        self.k, self.peaks, self.cache = k, peaks, {}

    def at(self, k: int) -> "_ByK":
        return _ByK(k, self.peaks)

    def __call__(self, score_fn) -> float:
        import torch

        from metarec.models.scoring import ScoreInputs, skip_weights

        method = getattr(score_fn, "__self__", None)
        if not isinstance(method, MetaRec):
            return 0.0
        model = method.rec.model
        w = torch.zeros(1, 20)
        w[0, :self.k] = 1.0
        x = ScoreInputs(*[torch.zeros(1, 1)] * 4, support_w=w, support_keep=w, profile=w, drop=w)
        with torch.no_grad():
            pop = float(skip_weights(model.params(), model.cfg, x).reshape(-1)[model.cfg.features.index("pop")])
            factor = model.inner_rate(model.params(), x)  # None: one rate for every K
            lr = method.rec.meta.inner_lr * (1.0 if factor is None else float(factor))
        want_pop, want_lr = self.peaks.get(self.k, (1.0, 0.3))
        return -abs(pop - want_pop) - abs(math.log(lr / want_lr))


@pytest.mark.parametrize("k_rate", [False, True])
def test_each_anchor_keeps_its_own_start(tiny_ml, tiny_models, k_rate):
    from metarec.models.scoring import ScoringConfig

    split = make_split(tiny_ml, SplitConfig(seed=0))
    m = MetaRecMethod(seed=0, train=TrainConfig(steps=0), encoder=EncoderConfig(model=tiny_models["bert"]),
                      head=ScoringConfig(k_inner_lr=k_rate))
    m.fit(fit_data(split), _ByK(5, {1: (3.0, 0.1), 10: (0.0, 0.5)}))
    model, pop = m.rec.model, m.rec.model.cfg.features.index("pop")
    assert float(model.head.w_feat.detach()[pop]) == 3.0  # the K = 1 search's winner
    assert float(model.cond.w_feat_k.detach()[pop]) == -3.0  # the K = 10 winner (0) minus it
    assert m.meta.inner_lr == 0.5  # the K = 10 rate is the inner loop's
    low = 0.1 if k_rate else 0.5  # K = 1's own rate, or the one rate for every K
    if k_rate:
        assert float(model.cond.lr_low.detach()) == pytest.approx(math.log(0.1 / 0.5))  # relative to K = 10's
    else:
        assert "cond.lr_low" not in model.params()
    assert m.prior["by_k"] == {"1": m.prior["low_anchor"]["chosen"], "10": m.prior["chosen"]}
    assert m.prior["inner_lr_by_k"] == {"1": low, "10": 0.5}
    assert m.prior["val_ks"] == [1, 5, 10]
    # scored at K = 1, 5 and 10: the mean of each K's score; at K = 5, pop 3 - 3 t and rate
    # 0.5 (low / 0.5)^(1 - t), against K = 5's peak (1, 0.3)
    t5 = (math.log(6) - math.log(2)) / (math.log(11) - math.log(2))
    lr5 = 0.5 * (low / 0.5) ** (1 - t5)
    at = {1: -abs(math.log(low / 0.1)), 5: -abs(3 - 3 * t5 - 1.0) - abs(math.log(lr5 / 0.3)),
          10: -abs(math.log(0.5 / 0.5))}
    assert m.model.start_val == pytest.approx(sum(at.values()) / 3, rel=1e-5)
