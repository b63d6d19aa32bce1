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


def _ndcg_at(scores: list[float], labels: list[int], cut: int) -> float:
    """Exact NDCG@cut of one ranking, written out."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(order[:cut]) if labels[i])
    ideal = sum(1 / math.log2(r + 2) for r in range(min(sum(labels), cut)))
    return dcg / ideal


def test_approx_ndcg_tends_to_the_exact_ndcg():
    from metarec.meta.losses import approx_ndcg

    s = [3.0, 2.0, 1.0, 0.0, -1.0, 0.5]
    lab = [1, 0, 1, 0, 0, 1]
    exact = _ndcg_at(s, lab, 2)  # ranks 1, 3, 4: only the first counts at cut 2
    assert exact == pytest.approx(1 / (1 + 1 / math.log2(3)))
    got = approx_ndcg(torch.tensor([s], dtype=torch.float64), torch.tensor([lab], dtype=torch.float64),
                      torch.ones(1, 6, dtype=torch.float64), cut=2, tau=1e-4, cut_tau=1e-3)
    assert got.item() == pytest.approx(exact, abs=1e-6)
    # cut 10: every positive counts; padding is ignored
    s2, lab2 = s + [9.0], lab + [0]
    mask = torch.tensor([[1.0] * 6 + [0.0]], dtype=torch.float64)
    got = approx_ndcg(torch.tensor([s2], dtype=torch.float64), torch.tensor([lab2], dtype=torch.float64), mask,
                      tau=1e-4, cut_tau=1e-3)
    assert got.item() == pytest.approx(_ndcg_at(s, lab, 10), abs=1e-6)
    assert task_losses("approx_ndcg", torch.tensor([s2], dtype=torch.float64),
                       torch.tensor([lab2], dtype=torch.float64), mask).item() < 0


def test_approx_ndcg_at_finite_temperature_matches_the_sum_of_sigmoids():
    from metarec.meta.losses import approx_ndcg

    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    s, lab, tau, ctau = [1.0, 0.2, 0.7, -0.3], [1, 0, 1, 0], 0.5, 2.0
    t = tau * (1.0 - -0.3) / 3  # the temperature's unit: the top candidates' score range per rank
    dcg = 0.0
    for i in (0, 2):
        rank = 1 + sum(sig((s[j] - s[i]) / t) for j in range(4) if j != i)
        dcg += sig((10.5 - rank) / ctau) / math.log2(1 + rank)
    want = dcg / (1 + 1 / math.log2(3))
    got = approx_ndcg(torch.tensor([s], dtype=torch.float64), torch.tensor([lab], dtype=torch.float64),
                      torch.ones(1, 4, dtype=torch.float64), tau=tau, cut_tau=ctau)
    assert got.item() == pytest.approx(want, rel=1e-12)


def test_approx_ndcg_sampled_negatives_stand_for_the_catalog():
    """Each of 2 sampled negatives counts as (n_items - positives) / 2 catalog negatives: here 2,
    exactly as if every negative appeared twice among the candidates (the temperature's unit, a
    score gap per catalog rank, is the same too)."""
    from metarec.meta.losses import approx_ndcg

    f64 = lambda x: torch.tensor([x], dtype=torch.float64)  # noqa: E731
    sampled = approx_ndcg(f64([0.4, 0.1, 0.9, -0.2]), f64([1, 1, 0, 0]), torch.ones(1, 4, dtype=torch.float64),
                          n_items=6, tau=0.3)
    doubled = approx_ndcg(f64([0.4, 0.1, 0.9, 0.9, -0.2, -0.2]), f64([1, 1, 0, 0, 0, 0]),
                          torch.ones(1, 6, dtype=torch.float64), tau=0.3)
    assert sampled.item() == pytest.approx(doubled.item(), rel=1e-12)
    assert sampled.item() != pytest.approx(approx_ndcg(f64([0.4, 0.1, 0.9, -0.2]), f64([1, 1, 0, 0]),
                                                      torch.ones(1, 4, dtype=torch.float64), tau=0.3).item())


def test_approx_ndcg_gradient_ignores_positives_far_below_the_cut():
    """The softmax pulls every positive up; approx-NDCG@10 leaves one ranked 40th alone."""
    from metarec.meta.losses import approx_ndcg

    s = torch.cat([torch.tensor([5.0, -5.0]), torch.linspace(4.0, -4.0, 60)]).double().requires_grad_(True)
    lab = torch.zeros(62, dtype=torch.float64)
    lab[:2] = 1  # one positive at the top, one near the bottom
    approx_ndcg(s[None], lab[None], torch.ones(1, 62, dtype=torch.float64)).sum().backward()
    assert abs(s.grad[1].item()) < 1e-6
    s.grad = None
    task_losses("softmax", s[None], lab[None], torch.ones(1, 62, dtype=torch.float64)).sum().backward()
    assert -s.grad[1].item() > 0.4  # the softmax pushes the deep positive up with a large step


def test_approx_ndcg_task_without_positives_scores_zero():
    from metarec.meta.losses import approx_ndcg

    got = approx_ndcg(torch.zeros(2, 3, dtype=torch.float64), torch.tensor([[0.0, 0, 0], [1, 0, 0]]).double(),
                      torch.ones(2, 3, dtype=torch.float64))
    assert got[0].item() == 0.0 and got[1].item() > 0


def test_approx_ndcg_does_not_depend_on_the_scale_of_the_scores():
    """Its temperature follows the spread of the top scores: scores x 10 give the same value, so a
    model whose top scores are far apart still gets a gradient."""
    from metarec.meta.losses import approx_ndcg

    g = torch.Generator().manual_seed(0)
    s = torch.randn(3, 40, generator=g, dtype=torch.float64)
    lab = (torch.rand(3, 40, generator=g) < 0.2).double()
    mask = torch.ones(3, 40, dtype=torch.float64)
    mask[2, 30:] = 0  # padding
    a = approx_ndcg(s, lab, mask, n_items=100)
    b = approx_ndcg(10 * s, lab, mask, n_items=100)
    assert torch.allclose(a, b, rtol=1e-10, atol=0)
    few = approx_ndcg(s[:, :5], lab[:, :5], mask[:, :5])  # fewer candidates than 2 * cut
    assert torch.isfinite(few).all()


def _direct(kind, s, labels, mask):
    """The losses written out in one pass, nothing precomputed (as `task_losses` computed them
    before `loss_fn` bound the label- and mask-only parts): the reference for `loss_fn`."""
    import torch.nn.functional as F

    if kind == "softmax":
        logits = s.masked_fill(mask <= 0, float("-inf"))
        logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        pos = (labels > 0).to(s.dtype) * mask
        return -(torch.where(pos > 0, logp, torch.zeros_like(logp)) * pos).sum(1) / pos.sum(1).clamp(min=1.0)
    if kind == "bce":
        loss = F.binary_cross_entropy_with_logits(s, (labels > 0).to(s.dtype), reduction="none")
        return (loss * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    if kind == "bpr":
        pos, neg = (labels > 0).to(s.dtype) * mask, (labels <= 0).to(s.dtype) * mask
        pair = pos.unsqueeze(2) * neg.unsqueeze(1)
        return (-F.logsigmoid(s.unsqueeze(2) - s.unsqueeze(1)) * pair).sum((1, 2)) / pair.sum((1, 2)).clamp(min=1.0)
    pos = (labels > 0).to(s.dtype) * mask
    return (((s - labels) ** 2) * pos).sum(1) / pos.sum(1).clamp(min=1.0)


@pytest.mark.parametrize("kind", ["softmax", "bce", "bpr", "mse"])
def test_bound_loss_is_the_direct_formula_to_the_bit(kind):
    """`loss_fn` (what an inner loop calls at every step) gives the direct formula's values, gradients
    and second derivatives bit for bit: padding, rows without positives, float32 then float64 from
    one bound function (its constants are kept per dtype)."""
    from metarec.meta.losses import loss_fn

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 6, (5, 9), generator=g).float() * (torch.rand(5, 9, generator=g) < 0.4)
    labels[2] = 0.0  # a task without positives
    mask = (torch.rand(5, 9, generator=g) < 0.8).float()
    mask[:, 0] = 1.0
    bound = loss_fn(kind, labels, mask)
    for dtype in (torch.float32, torch.float64):
        s = (3 * torch.randn(5, 9, generator=g)).to(dtype).requires_grad_(True)
        got, want = bound(s), _direct(kind, s, labels, mask)
        assert got.dtype == dtype and torch.equal(got, want)
        g_got, = torch.autograd.grad(got.sum(), s, create_graph=True)
        g_want, = torch.autograd.grad(want.sum(), s, create_graph=True)
        assert torch.equal(g_got, g_want)
        v = torch.randn(5, 9, generator=g).to(dtype)  # a Hessian-vector product: what second-order MAML needs
        h_got, = torch.autograd.grad((g_got * v).sum(), s)
        h_want, = torch.autograd.grad((g_want * v).sum(), s)
        assert torch.equal(h_got, h_want)
