"""The scoring network's backward is bitwise reproducible (the seed-determinism promise).

Advanced indexing of a trainable table (`table[idx]`) back-propagates through index_put_ with
accumulation, whose parallel CPU kernel sums repeated indices in a thread-dependent order; at
ML-100K sizes two identical backward passes disagreed in 20 of 20 tries. The head gathers rows with
`F.embedding`, whose backward is deterministic.
"""

import numpy as np
import torch

from metarec.models.heads import HeadConfig, ScoreInputs, ScoringModel, rows


def _grads(model: ScoringModel, text: torch.Tensor, x: ScoreInputs) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    model(text, x).square().sum().backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_scoring_backward_is_bitwise_reproducible_at_catalog_scale():
    torch.manual_seed(0)
    n_items, t, n, k, e = 1682, 32, 2200, 5, 24
    model = ScoringModel(HeadConfig(), e, n_items, generator=torch.Generator().manual_seed(0))
    text = torch.randn(n_items, e)
    x = ScoreInputs(items=torch.randint(0, n_items, (t, n)), feats=torch.randn(t, n, 4),
                    item_keep=torch.ones(t, n), support=torch.randint(0, n_items, (t, k)),
                    support_w=torch.ones(t, k), support_keep=torch.ones(t, k), profile=torch.randn(t, e),
                    drop=torch.full((t, n), -1))
    ref = _grads(model, text, x)
    assert len(ref) == len(list(model.parameters()))
    for _ in range(5):
        for a, b in zip(ref, _grads(model, text, x)):
            assert torch.equal(a, b)


def test_rows_is_indexing():
    table = torch.arange(12.0).reshape(4, 3)
    idx = torch.tensor([[3, 0], [0, 0]])
    np.testing.assert_array_equal(rows(table, idx).numpy(), table[idx].numpy())
