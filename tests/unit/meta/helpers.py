"""A tiny synthetic meta-learning problem for backend tests."""

import numpy as np
import scipy.sparse as sp
import torch

from metarec.meta.tasks import MetaData, sample_tasks
from metarec.models.features import ItemSide
from metarec.models.scoring import ScoringConfig, ScoringModel


def tiny_problem(seed=0, n_users=20, n_items=30, emb=8, dtype=torch.float64, use_ids=True):
    rng = np.random.default_rng(seed)
    x = (rng.random((n_users, n_items)) < 0.35).astype(np.float32)
    side = ItemSide.build(rng.normal(size=(n_items, emb)), sp.csr_matrix(x), ease_lambda=2.0)
    seqs = []
    for u in range(n_users):
        items = rng.permutation(np.flatnonzero(x[u]))
        seqs.append((items.astype(np.int64), rng.integers(1, 6, size=len(items)).astype(np.float32)))
    md = MetaData(side=side, sequences=seqs, user_rows=sp.csr_matrix(x),
                  profiles=rng.normal(size=(n_users, emb)).astype(np.float32))
    cfg = ScoringConfig(dim=4, hidden=5, use_ids=use_ids, k_inner_lr=True)  # every K-dependent part exercised
    gen = torch.Generator().manual_seed(seed)
    model = ScoringModel(cfg, emb, n_items, generator=gen).to(dtype)
    # give the zero-initialised biases and id table some mass so every path is exercised
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=dtype) * 0.3)
    batch = sample_tasks(md, cfg, np.random.default_rng(seed + 1), n_tasks=4, k=3, n_query=5, n_neg=6,
                         n_inner_neg=4, id_dropout=0.2).to(dtype=dtype)
    text = torch.from_numpy(side.text).to(dtype)
    return model, batch, text, md
