"""The scoring network's backward is bitwise reproducible (the seed-determinism promise).

Advanced indexing of a trainable table (`table[idx]`) back-propagates through index_put_ with
accumulation, whose parallel CPU kernel sums repeated indices in a thread-dependent order; at
ML-100K sizes two identical backward passes disagreed in 20 of 20 tries. The head gathers rows with
`F.embedding`, whose backward is deterministic.
"""

import numpy as np
import torch

from metarec.models.features import FEATURES
from metarec.models.scoring import ScoringConfig, ScoreInputs, ScoringModel, rows


def _grads(model: ScoringModel, text: torch.Tensor, x: ScoreInputs) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    model(text, x).square().sum().backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_scoring_backward_is_bitwise_reproducible_at_catalog_scale():
    torch.manual_seed(0)
    n_items, t, n, k, e = 1682, 32, 2200, 5, 24
    model = ScoringModel(ScoringConfig(), e, n_items, generator=torch.Generator().manual_seed(0))
    text = torch.randn(n_items, e)
    x = ScoreInputs(items=torch.randint(0, n_items, (t, n)), feats=torch.randn(t, n, len(model.cfg.features)),
                    item_keep=torch.ones(t, n), support=torch.randint(0, n_items, (t, k)),
                    support_w=torch.ones(t, k), support_keep=torch.ones(t, k), profile=torch.randn(t, e),
                    drop=torch.full((t, n), -1))
    ref = _grads(model, text, x)
    # every weight of the forward gets a gradient (cond.lr_low scales the inner loop's steps only)
    assert len(ref) == len([n for n, _ in model.named_parameters() if n != "cond.lr_low"])
    for _ in range(5):
        for a, b in zip(ref, _grads(model, text, x)):
            assert torch.equal(a, b)


def test_rows_is_indexing():
    table = torch.arange(12.0).reshape(4, 3)
    idx = torch.tensor([[3, 0], [0, 0]])
    np.testing.assert_array_equal(rows(table, idx).numpy(), table[idx].numpy())


def test_catalog_inputs_score_like_materialised_candidates():
    """Full-catalog scoring with stride-0 item rows (item vectors computed once per batch) gives the
    same scores as the same candidates written out per task, bit for bit."""
    import scipy.sparse as sp

    from metarec.meta.tasks import catalog_inputs, outer_inputs
    from metarec.models.features import ItemSide

    rng = np.random.default_rng(0)
    n_items, e, u, k = 50, 8, 6, 3
    side = ItemSide.build(rng.normal(size=(n_items, e)).astype(np.float32),
                          sp.csr_matrix((rng.random((30, n_items)) < 0.3).astype(np.float32)))
    model = ScoringModel(ScoringConfig(dim=4, hidden=5, features=FEATURES), e, n_items,
                         generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.shared.id_emb.normal_(generator=torch.Generator().manual_seed(1))
    support = rng.integers(0, n_items, size=(u, k))
    sf = side.support_features(support, np.ones((u, k), bool))
    keep = (rng.random(n_items) < 0.7)
    w = rng.random((u, k)).astype(np.float32)
    prof = rng.normal(size=(u, e)).astype(np.float32)
    text = torch.from_numpy(side.text)
    fast = catalog_inputs(model.cfg, sf, keep, support, w, prof)
    assert fast.items.stride(0) == 0
    items = np.ascontiguousarray(np.broadcast_to(np.arange(n_items), (u, n_items)))
    slow = outer_inputs(model.cfg, items, sf, np.broadcast_to(keep, (u, n_items)), support, w, prof)
    with torch.no_grad():
        assert torch.equal(model(text, fast), model(text, slow))
        # adapt="all": the text projection carries a task dimension (one adapted copy per user)
        params = model.params()
        g = torch.Generator().manual_seed(2)
        params["body.w_text"] = params["body.w_text"] + 0.1 * torch.randn(u, *params["body.w_text"].shape, generator=g)
        per_task = model.score_fn(params, text, fast)
        torch.testing.assert_close(per_task, model.score_fn(params, text, slow), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(per_task, model(text, fast))
        # moving or casting keeps the catalog broadcast (not one copy per user), and the scores
        moved = fast.to(dtype=torch.float64, device="cpu")
        assert moved.items.stride(0) == 0 and moved.item_keep.stride(0) == 0
        assert moved.item_keep.dtype == torch.float64 and moved.items.dtype == torch.int64
        assert moved.feats.stride(0) != 0 and torch.equal(moved.item_keep, fast.item_keep.double())
        d = model.double()
        torch.testing.assert_close(d(text.double(), moved), d(text.double(), slow.to(dtype=torch.float64)),
                                   rtol=1e-12, atol=1e-12)


def test_one_user_vector_first_layer_equals_the_concatenated_form():
    """Scoring with nothing left out (one user vector per task, first layer as v @ (u^T * w1)) gives
    the scores and gradients of the general per-candidate path ([u * v, feats] @ w1), which a single
    left-out candidate forces; float64, shared and per-task (adapted) head weights."""
    torch.manual_seed(0)
    n_items, t, n, k, e = 40, 3, 7, 4, 6
    model = ScoringModel(ScoringConfig(dim=5, hidden=8), e, n_items, generator=torch.Generator().manual_seed(0)).double()
    text = torch.randn(n_items, e, dtype=torch.float64)
    x = ScoreInputs(items=torch.randint(0, n_items, (t, n)), feats=torch.randn(t, n, len(model.cfg.features), dtype=torch.float64),
                    item_keep=torch.ones(t, n, dtype=torch.float64), support=torch.randint(0, n_items, (t, k)),
                    support_w=torch.rand(t, k, dtype=torch.float64) + 0.5,
                    support_keep=torch.ones(t, k, dtype=torch.float64), profile=torch.randn(t, e, dtype=torch.float64),
                    drop=torch.full((t, n), -1))
    # the same candidates plus one more whose user vector leaves support slot 0 out: general path
    extra = ScoreInputs(*(torch.cat([a, a[:, :1]], 1) for a in (x.items, x.feats, x.item_keep)),
                        x.support, x.support_w, x.support_keep, x.profile, torch.cat([x.drop, torch.zeros(t, 1, dtype=torch.long)], 1))
    for per_task in (False, True):
        params = {n_: p.detach().clone().requires_grad_(True) for n_, p in model.params().items()}
        if per_task:
            for name in ("head.w1", "head.b1"):
                params[name] = (params[name] + 0.1 * torch.randn(t, *params[name].shape, dtype=torch.float64)).detach().requires_grad_(True)
        fast = model.score_fn(params, text, x)
        general = model.score_fn(params, text, extra)[:, :n]
        torch.testing.assert_close(fast, general, rtol=1e-12, atol=1e-12)
        names = ["head.w1", "head.b1", "body.w_text", "shared.id_emb", "body.w_profile"]
        g_fast = torch.autograd.grad(fast.square().sum(), [params[m] for m in names])
        g_gen = torch.autograd.grad(general.square().sum(), [params[m] for m in names])
        for a, b in zip(g_fast, g_gen):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_leave_one_out_flag_is_read_on_the_host_and_is_what_score_uses():
    torch.manual_seed(1)
    n_items, t, n, k, e = 40, 3, 6, 4, 5
    model = ScoringModel(ScoringConfig(dim=4, hidden=5), e, n_items, generator=torch.Generator().manual_seed(0))
    text = torch.randn(n_items, e)
    base = dict(items=torch.randint(0, n_items, (t, n)), feats=torch.randn(t, n, len(model.cfg.features)),
                item_keep=torch.ones(t, n), support=torch.randint(0, n_items, (t, k)),
                support_w=torch.rand(t, k) + 0.5, support_keep=torch.ones(t, k), profile=torch.randn(t, e))
    none_out = ScoreInputs(**base, drop=torch.full((t, n), -1))
    loo = ScoreInputs(**base, drop=torch.randint(0, k, (t, n)))
    with torch.no_grad():
        # `to()` records the flag from the host copy; scores are the same with or without it
        mixed = ScoreInputs(**base, drop=torch.where(torch.arange(t)[:, None] == 1, loo.drop, -1))
        for x, flags in ((none_out, (False,) * t), (loo, (True,) * t), (mixed, (False, True, False))):
            moved = x.to(dtype=torch.float32)
            assert moved.task_drops == flags and x.task_drops is None
            assert torch.equal(model(text, moved), model(text, x))
            # one task's slice keeps its own flag (learn2learn's per-task loop)
            for i in range(t):
                one = moved.select(slice(i, i + 1))
                assert one.task_drops == (flags[i],)
                assert torch.equal(model(text, one), model(text, x.select(slice(i, i + 1))))
        # the leave-one-out changes the scores, and the recorded flags (not the tensor) pick the branch
        assert not torch.allclose(model(text, loo), model(text, none_out))
        told_none = ScoreInputs(**base, drop=loo.drop, task_drops=(False,) * t)
        assert torch.equal(model(text, told_none), model(text, none_out))
        # an empty batch (no users in a chunk) has no flags to read and leaves nothing out
        empty = ScoreInputs(*(a[:0] for a in (loo.items, loo.feats, loo.item_keep, loo.support, loo.support_w,
                                              loo.support_keep, loo.profile, loo.drop))).to(dtype=torch.float32)
        assert empty.task_drops == () and not empty.has_drop()


def test_head_input_computed_once_scores_like_the_whole_forward():
    """An inner loop that adapts the head alone computes the head's input once (`inner_fixed`) and
    scores each step from it: the same scores, to the bit, with leave-one-out candidates ([u * v,
    feats] built once) and without (one user vector per task), with per-task head weights; the
    gradients reach the body through it as through the whole forward (float64)."""
    torch.manual_seed(2)
    n_items, t, n, k, e = 30, 3, 6, 4, 5
    model = ScoringModel(ScoringConfig(dim=4, hidden=6), e, n_items, generator=torch.Generator().manual_seed(0)).double()
    text = torch.randn(n_items, e, dtype=torch.float64)
    f64 = torch.float64
    base = dict(items=torch.randint(0, n_items, (t, n)), feats=torch.randn(t, n, len(model.cfg.features), dtype=f64),
                item_keep=torch.ones(t, n, dtype=f64), support=torch.randint(0, n_items, (t, k)),
                support_w=torch.rand(t, k, dtype=f64) + 0.5, support_keep=torch.ones(t, k, dtype=f64),
                profile=torch.randn(t, e, dtype=f64))
    for drop in (torch.randint(-1, k, (t, n)), torch.full((t, n), -1)):
        x = ScoreInputs(**base, drop=drop)
        params = model.params()
        fixed = model.inner_fixed(params, text, x, None, ["head.w1", "head.b1", "head.w2", "head.b2", "head.w_feat"])
        assert isinstance(fixed, tuple) == bool((drop < 0).all())
        head = {m: (params[m] + 0.1 * torch.randn(t, *params[m].shape, dtype=f64)) for m in params
                if m.startswith("head.")}
        once = model.score_fn({**params, **head}, text, x, fixed=fixed)
        whole = model.score_fn({**params, **head}, text, x)
        assert torch.equal(once, whole)
        body = [params[m] for m in ("body.w_text", "body.w_profile", "shared.id_emb")]
        g_once = torch.autograd.grad(once.square().sum(), body)
        for a, b in zip(g_once, torch.autograd.grad(whole.square().sum(), body)):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert model.inner_fixed(params, text, x, None, ["body.w_text", "head.w1"]) is None  # the body adapts: per step
