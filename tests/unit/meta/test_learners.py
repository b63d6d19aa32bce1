"""Both backends compute the same MAML; the second-order meta-gradient matches finite differences."""

import copy
import math

import numpy as np
import pytest
import torch

from metarec.meta.learners import FunctionalMeta, L2LMeta, MetaConfig
from tests.unit.meta.helpers import tiny_problem

CASES = [("maml", "head"), ("maml", "all"), ("fomaml", "head"), ("fomaml", "all"), ("metasgd", "head"),
         ("metasgd", "all"), ("anil", "all")]


def _grads(learner, batch):
    for p in learner.outer_parameters():
        p.grad = None
    loss = learner.meta_loss(batch)
    loss.backward()
    return loss.item(), [p.grad.clone() if p.grad is not None else torch.zeros_like(p)
                         for p in learner.outer_parameters()]


@pytest.mark.parametrize("algorithm,adapt,outer_loss", [c + (None,) for c in CASES]
                         + [("maml", "head", "approx_ndcg"), ("metasgd", "all", "approx_ndcg")])
def test_backends_agree_float64(algorithm, adapt, outer_loss):
    model, batch, text, _ = tiny_problem()
    cfg = MetaConfig(algorithm=algorithm, adapt=adapt, inner_steps=2, inner_lr=0.3, outer_loss=outer_loss)
    f = FunctionalMeta(model, cfg, text)
    m2 = copy.deepcopy(model)
    lrn = L2LMeta(m2, cfg, text)
    if f.lrs is not None:  # same learned rates in both (perturbed so they are not all equal)
        with torch.no_grad():
            for a, b in zip(f.lrs.lrs, lrn.lrs.lrs):
                a.mul_(torch.linspace(0.5, 1.5, a.numel(), dtype=a.dtype).reshape(a.shape))
                b.copy_(a)
    # adapted parameters, task by task
    fast = f.adapt(batch.inner, batch.inner_labels, batch.inner_mask, create_graph=False)
    for t in range(batch.n_tasks):
        clone, _ = lrn.adapt_task(batch, t)
        for name, p in clone.module.named_parameters():
            assert torch.allclose(fast[name][t], p.detach(), atol=1e-8, rtol=0), name
    lf, gf = _grads(f, batch)
    ll, gl = _grads(lrn, batch)
    assert abs(lf - ll) <= 1e-10
    assert len(gf) == len(gl)
    for a, b in zip(gf, gl):
        assert (a - b).abs().max().item() <= 1e-8
    assert any(g.abs().sum() > 0 for g in gf)


def _flat_meta_grad(model, cfg, batch, text):
    learner = FunctionalMeta(model, cfg, text)
    _, g = _grads(learner, batch)
    return torch.cat([x.flatten() for x in g[: len(list(model.parameters()))]])


def test_second_order_meta_gradient_matches_finite_differences():
    model, batch, text, _ = tiny_problem(seed=3)
    cfg = MetaConfig(algorithm="maml", adapt="head", inner_steps=2, inner_lr=0.5)
    auto = _flat_meta_grad(model, cfg, batch, text)
    fo = _flat_meta_grad(model, MetaConfig(algorithm="fomaml", adapt="head", inner_steps=2, inner_lr=0.5), batch, text)
    params = list(model.parameters())
    flat = torch.cat([p.detach().flatten() for p in params])
    rng = np.random.default_rng(0)
    idx = rng.choice(flat.numel(), size=25, replace=False)
    learner = FunctionalMeta(model, cfg, text)
    eps = 1e-6
    fd = []
    for i in idx:
        vals = []
        for sign in (1, -1):
            with torch.no_grad():
                offset = 0
                for p in params:
                    n = p.numel()
                    if offset <= i < offset + n:
                        p.view(-1)[i - offset] += sign * eps
                    offset += n
            vals.append(learner.meta_loss(batch).item())
            with torch.no_grad():
                offset = 0
                for p in params:
                    n = p.numel()
                    if offset <= i < offset + n:
                        p.view(-1)[i - offset] -= sign * eps
                    offset += n
        fd.append((vals[0] - vals[1]) / (2 * eps))
    fd = torch.tensor(fd, dtype=torch.float64)
    assert torch.allclose(auto[idx], fd, atol=1e-6, rtol=1e-5)
    # and the first-order approximation is measurably different: the second-order term is real
    assert (fo[idx] - fd).abs().max() > 1e-4


def test_adaptation_lowers_support_loss_and_k0_works():
    from metarec.meta.losses import task_losses
    from metarec.models.scoring import score
    from metarec.meta.tasks import sample_tasks
    from tests.unit.meta.helpers import tiny_problem as tp

    model, batch, text, md = tp(seed=5)
    f = FunctionalMeta(model, MetaConfig(inner_steps=3, inner_lr=0.05), text)
    params = model.params()
    before = task_losses("softmax", score(params, model.cfg, text, batch.inner), batch.inner_labels, batch.inner_mask)
    fast = f.adapt(batch.inner, batch.inner_labels, batch.inner_mask, create_graph=False)
    after = task_losses("softmax", score({**params, **fast}, model.cfg, text, batch.inner), batch.inner_labels,
                        batch.inner_mask)
    assert (after < before).all()
    # K = 0: no support at all; scoring from the meta-learned initialisation still works
    b0 = sample_tasks(md, model.cfg, np.random.default_rng(0), n_tasks=3, k=0, n_query=4, n_neg=5,
                      n_inner_neg=3).to(dtype=torch.float64)
    s = score(params, model.cfg, text, b0.outer)
    assert s.shape == (3, 9) and torch.isfinite(s).all()


def test_outer_loss_is_the_query_loss_and_the_inner_loop_keeps_its_own():
    from metarec.core.errors import ConfigError
    from metarec.meta.losses import approx_ndcg

    model, batch, text, _ = tiny_problem()
    base = MetaConfig(inner_steps=2, inner_lr=0.3)
    f_soft = FunctionalMeta(model, base, text)
    f_ndcg = FunctionalMeta(model, MetaConfig(inner_steps=2, inner_lr=0.3, outer_loss="approx_ndcg"), text)
    # the same inner loop: identical adapted weights
    a = f_soft.adapt(batch.inner, batch.inner_labels, batch.inner_mask, create_graph=False)
    b = f_ndcg.adapt(batch.inner, batch.inner_labels, batch.inner_mask, create_graph=False)
    assert all(torch.equal(a[n], b[n]) for n in a)
    # the query loss is minus approx-NDCG@10 over the catalog (text has one row per item)
    s = f_ndcg.query_scores(batch)
    want = -approx_ndcg(s, batch.outer_labels, batch.outer_mask, n_items=text.shape[0]).mean()
    assert f_ndcg.meta_loss(batch).item() == pytest.approx(want.item(), rel=1e-12)
    assert f_ndcg.meta_loss(batch).item() != pytest.approx(f_soft.meta_loss(batch).item())
    with pytest.raises(ConfigError, match="outer_loss"):
        MetaConfig(outer_loss="hinge")
    with pytest.raises(ConfigError, match="rating labels"):
        MetaConfig(outer_loss="mse")
    with pytest.raises(ConfigError, match="loss must be"):
        MetaConfig(loss="approx_ndcg")  # outer only


@pytest.mark.parametrize("learned", [False, True])
def test_sgd_step_is_weight_minus_rate_times_gradient_to_the_bit(learned):
    """The multi-tensor inner update equals cur - lr * grad per weight, values and gradients (to the
    weights, the gradients and MetaSGD's learned rates, broadcast over the tasks)."""
    from metarec.meta.learners import sgd_step

    g = torch.Generator().manual_seed(0)
    shapes = {"w": (4, 3), "b": (3,)}
    cur = {n: torch.randn(6, *s, generator=g, requires_grad=True) for n, s in shapes.items()}
    grads = tuple(torch.randn(6, *s, generator=g, requires_grad=True) for s in shapes.values())
    lrs = [torch.rand(*s, generator=g).requires_grad_(True) for s in shapes.values()] if learned else 0.1
    got = sgd_step(cur, list(shapes), grads, lrs)
    want = {n: cur[n] - (lrs[i] if learned else 0.1) * grads[i] for i, n in enumerate(shapes)}
    leaves = list(cur.values()) + list(grads) + (lrs if learned else [])
    w = {n: torch.randn(6, *s, generator=g) for n, s in shapes.items()}
    d_got = torch.autograd.grad(sum((got[n] * w[n]).sum() for n in shapes), leaves)
    d_want = torch.autograd.grad(sum((want[n] * w[n]).sum() for n in shapes), leaves)
    for n in shapes:
        assert torch.equal(got[n], want[n])
    for a, b in zip(d_got, d_want):
        assert torch.equal(a, b)


def test_an_integer_inner_rate_adapts_like_the_same_float():
    model, batch, text, _ = tiny_problem()
    got = [FunctionalMeta(model, MetaConfig(inner_steps=2, inner_lr=lr), text).adapt(
        batch.inner, batch.inner_labels, batch.inner_mask, create_graph=False) for lr in (1, 1.0)]
    for n in got[0]:
        assert torch.equal(got[0][n], got[1][n])


@pytest.mark.parametrize("k,factor", [(1, 2.0), (10, 1.0), (20, 1.0)])
def test_the_inner_rate_follows_the_support_size(k, factor):
    """cond.lr_low = log 2: a step at K <= 1 is twice the meta config's, at K >= 10 exactly it."""
    from metarec.meta.tasks import sample_tasks

    model, _, text, md = tiny_problem()
    batch = sample_tasks(md, model.cfg, np.random.default_rng(5), n_tasks=3, k=k, n_query=5, n_neg=6,
                         n_inner_neg=4).to(dtype=torch.float64)
    cfg = MetaConfig(inner_steps=1, inner_lr=0.3)
    deltas = []
    for g in (0.0, math.log(2.0)):
        with torch.no_grad():
            model.cond.lr_low.fill_(g)
        fast = FunctionalMeta(model, cfg, text).adapt(batch.inner, batch.inner_labels, batch.inner_mask,
                                                      create_graph=False)
        deltas.append(fast["head.w1"] - model.head.w1.detach())
    assert deltas[0].abs().max() > 1e-6
    torch.testing.assert_close(deltas[1], deltas[0] * factor, rtol=1e-12, atol=1e-15)
