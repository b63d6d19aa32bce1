"""The skip weights follow the support size: head.w_feat at the low anchor K, head.w_feat +
cond.w_feat_k at the high one, linear in log(1 + K) between them and flat outside."""

import math

import pytest
import torch

from metarec.core.errors import ConfigError
from metarec.models.scoring import ScoringConfig, ScoreInputs, ScoringModel, skip_weights


def _inputs(support_w: torch.Tensor, n: int = 3, f: int = 2) -> ScoreInputs:
    t, k = support_w.shape
    return ScoreInputs(items=torch.zeros(t, n, dtype=torch.long), feats=torch.ones(t, n, f),
                       item_keep=torch.zeros(t, n), support=torch.zeros(t, k, dtype=torch.long), support_w=support_w,
                       support_keep=torch.zeros(t, k), profile=torch.zeros(t, 4), drop=torch.full((t, n), -1))


def _model(anchors=(1, 10)) -> ScoringModel:
    cfg = ScoringConfig(dim=2, hidden=3, features=("knn", "pop"), use_ids=False, use_profile=False, k_anchors=anchors)
    model = ScoringModel(cfg, 4, 5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.head.w_feat.copy_(torch.tensor([1.0, 3.0]))
        if anchors is not None:
            model.cond.w_feat_k.copy_(torch.tensor([2.0, -3.0]))
    return model


def test_skip_weights_by_support_size_by_hand():
    model = _model()
    # rows: K = 0, 1, 3 (one padded slot: weight 0), 10, 20 support items; ratings weigh the slots
    w = torch.zeros(5, 20)
    for row, k in enumerate((0, 1, 3, 10, 20)):
        w[row, :k] = 0.6
    w[2, 3] = 0.0
    got = skip_weights(model.params(), model.cfg, _inputs(w))
    t3 = (math.log(4) - math.log(2)) / (math.log(11) - math.log(2))  # K = 3 between K = 1 and K = 10
    want = torch.tensor([[1.0, 3.0], [1.0, 3.0], [1 + 2 * t3, 3 - 3 * t3], [3.0, 0.0], [3.0, 0.0]])
    torch.testing.assert_close(got, want)


def test_the_score_uses_the_weights_of_its_support_size():
    model = _model()
    with torch.no_grad():
        model.head.w2.zero_()
        model.head.b2.zero_()  # the MLP adds nothing: the score is the skip alone
    w = torch.zeros(2, 10)
    w[0, :1] = 1.0
    w[1, :] = 1.0
    x = _inputs(w)
    s = model(torch.zeros(5, 4), x)
    # every feature is 1: K = 1 scores 1 + 3, K = 10 scores 3 + 0
    torch.testing.assert_close(s, torch.tensor([[4.0] * 3, [3.0] * 3]))


def test_without_anchors_one_start_serves_every_k():
    model = _model(anchors=None)
    assert "cond.w_feat_k" not in model.params()
    w = torch.ones(2, 10)
    w[0, 1:] = 0
    got = skip_weights(model.params(), model.cfg, _inputs(w))
    torch.testing.assert_close(got, torch.tensor([1.0, 3.0]))


@pytest.mark.parametrize("anchors", [(5, 5), (10, 1), (-1, 3)])
def test_bad_anchors_are_refused(anchors):
    with pytest.raises(ConfigError, match="k_anchors"):
        ScoringConfig(k_anchors=anchors)
