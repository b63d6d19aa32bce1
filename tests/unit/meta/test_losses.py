"""The per-task losses against hand-computed values."""

import math

import pytest
import torch

from metarec.meta.losses import task_losses

S = torch.tensor([[2.0, 0.0, -1.0, 5.0]], dtype=torch.float64)
L = torch.tensor([[1.0, 0.0, 0.0, 1.0]], dtype=torch.float64)
M = torch.tensor([[1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)  # the last candidate is padding


def test_softmax_is_the_multinomial_likelihood_of_positives():
    z = math.exp(2) + math.exp(0) + math.exp(-1)
    assert task_losses("softmax", S, L, M).item() == pytest.approx(-(2 - math.log(z)))


def test_bce_masked_mean():
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731  softplus
    want = (sp(-2.0) + sp(0.0) + sp(-1.0)) / 3
    assert task_losses("bce", S, L, M).item() == pytest.approx(want)


def test_bpr_pairs_positive_with_each_negative():
    lsig = lambda x: -math.log1p(math.exp(-x))  # noqa: E731  log sigmoid
    want = -(lsig(2.0 - 0.0) + lsig(2.0 + 1.0)) / 2
    assert task_losses("bpr", S, L, M).item() == pytest.approx(want)


def test_mse_on_rated_items_only():
    labels = torch.tensor([[4.0, 0.0, 0.0, 3.0]], dtype=torch.float64)
    assert task_losses("mse", S, labels, M).item() == pytest.approx((2.0 - 4.0) ** 2)


def test_unknown_loss():
    with pytest.raises(ValueError, match="unknown loss"):
        task_losses("hinge", S, L, M)
