"""MeLU (Lee et al., KDD 2019) as published: feature embeddings + MLP decision layers.

Items: genre embedding (mean of the item's genre vectors) and release-decade embedding. Users:
gender, age-bucket and occupation embeddings, read from one-hot profile features. Decision layers
fc1 (64) -> fc2 (64) -> rating; the local (per-user) update touches only those layers (`head.*`),
the embeddings are global (`shared.*`). Same functional-forward contract as `ScoringModel`, so both
meta-learning backends run it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from metarec.models.scoring import ScoringConfig, ScoreInputs, _Group, linear, rows

AGE_EDGES = (18, 25, 35, 45, 50, 56)


@dataclass(frozen=True)
class MeluFeatures:
    """Categorical side features in tensor form."""

    item_genres: np.ndarray  # float32 [I, G], rows sum to 1 (or 0 without genres)
    item_decade: np.ndarray  # int64 [I], 0 = unknown
    n_decades: int
    user_vocab: dict[str, list[str]]  # field -> categories (one-hot order)

    @classmethod
    def build(cls, items: pd.DataFrame, users: pd.DataFrame) -> "MeluFeatures":
        genres = sorted({g for gs in items["genres"] for g in gs})
        gi = {g: j for j, g in enumerate(genres)}
        m = np.zeros((len(items), max(len(genres), 1)), np.float32)
        for r, gs in enumerate(items["genres"]):
            for g in gs:
                m[r, gi[g]] = 1.0
        m /= np.maximum(m.sum(1, keepdims=True), 1.0)
        years = [y for y in items["year"] if y is not None]
        lo = (min(years) // 10) if years else 0
        dec = np.array([0 if y is None else int(y) // 10 - lo + 1 for y in items["year"]], np.int64)
        vocab = {
            "gender": sorted({str(g) for g in users["gender"] if g is not None}),
            "age": [str(a) for a in range(len(AGE_EDGES) + 1)],
            "occupation": sorted({str(o) for o in users["occupation"] if o is not None}),
        }
        return cls(m, dec, int(dec.max()) + 1, vocab)

    def user_onehots(self, users: pd.DataFrame) -> np.ndarray:
        """float32 [U, sum of vocab sizes]: one-hot gender | age bucket | occupation (all-zero = unknown)."""
        blocks = []
        for field, cats in self.user_vocab.items():
            idx = {c: j for j, c in enumerate(cats)}
            b = np.zeros((len(users), max(len(cats), 1)), np.float32)
            for r, v in enumerate(users[field] if field in users else [None] * len(users)):
                if v is None or (isinstance(v, float) and v != v):
                    continue
                key = str(int(np.searchsorted(AGE_EDGES, float(v), side="right"))) if field == "age" else str(v)
                if key in idx:
                    b[r, idx[key]] = 1.0
            blocks.append(b)
        return np.concatenate(blocks, axis=1)


class MeluModel(torch.nn.Module):
    """MeLU's network. `score_fn(params, item_text, x)` returns predicted ratings [T, N]."""

    def __init__(self, feats: MeluFeatures, emb: int = 32, fc1: int = 64, fc2: int = 64,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = ScoringConfig(features=())  # no side features: MeLU scores from its embeddings alone
        self.register_buffer("item_genres", torch.from_numpy(feats.item_genres))
        self.register_buffer("item_decade", torch.from_numpy(feats.item_decade))
        self.sizes = [max(len(c), 1) for c in feats.user_vocab.values()]

        def init(*shape):
            return torch.randn(*shape, generator=generator) * (shape[0] ** -0.5)

        self.shared = _Group(genre=init(feats.item_genres.shape[1], emb), decade=init(feats.n_decades, emb),
                             **{f"user{j}": init(n, emb) for j, n in enumerate(self.sizes)})
        d_in = emb * (2 + len(self.sizes))
        self.head = _Group(w1=init(d_in, fc1), b1=torch.zeros(fc1), w2=init(fc1, fc2), b2=torch.zeros(fc2),
                           w3=init(fc2, 1), b3=torch.zeros(1))
        self.body = _Group()

    def params(self) -> dict[str, Tensor]:
        return dict(self.named_parameters())

    def adaptable_names(self, adapt: str) -> list[str]:
        return [n for n, _ in self.named_parameters() if n.startswith("head.")]

    def score_fn(self, params: dict[str, Tensor], item_text: Tensor, x: ScoreInputs,
                 proj: Tensor | None = None, fixed=None) -> Tensor:  # proj, fixed: the ScoringModel
        # interface; unused (without an `inner_fixed`, learners never pass `fixed`)
        g = self.item_genres.to(x.profile.dtype)[x.items] @ params["shared.genre"]  # [T, N, e]
        d = rows(params["shared.decade"], self.item_decade[x.items])
        users, start = [], 0
        for j, n in enumerate(self.sizes):
            users.append(x.profile[:, start:start + n] @ params[f"shared.user{j}"])
            start += n
        u = torch.cat(users, dim=-1).unsqueeze(1).expand(-1, x.items.shape[1], -1)
        h = torch.cat([g, d, u], dim=-1)
        h = torch.relu(linear(h, params["head.w1"], params["head.b1"]))
        h = torch.relu(linear(h, params["head.w2"], params["head.b2"]))
        return linear(h, params["head.w3"], params["head.b3"]).squeeze(-1)
