"""Why an item is recommended: the contribution of each support item and of each named signal.

Two exact decompositions of an adapted user's score of an item, both cheap at K <= 20:

- **support items**, by leave-one-out: support item j's contribution is the item's score minus its
  score when the user is adapted again from scratch without j (the same inner loop, the same
  negatives rule). All K leave-one-out users are adapted together in one batch.
- **signals**, from the head's linear skip over the side features: the score is
  `sum_f w_f * feature_f + mlp(...)`, so each named feature (similar items, text, popularity,
  newness, trend, EASE weights) contributes exactly `w_f * feature_f` with the user's adapted
  weights; the rest of the score is the learned interaction of user and item vectors, reported as
  one term ("interaction").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from metarec.meta.retrieve import adapt_restricted
from metarec.models.scoring import skip_weights

if TYPE_CHECKING:
    from metarec.meta.recommender import MetaRecommender

# what each side feature means to a person reading an explanation
SIGNAL_NAMES = {"knn": "similar to items you interacted with", "content": "similar text",
                "pop": "popular", "new": "new item", "trend": "popular lately",
                "ease": "often chosen with your items"}


@dataclass
class Explanation:
    """Why one item scored as it did for one adapted user.

    Attributes:
        item_id: the item explained; score: its score.
        support: (support item id, contribution), largest first: how much lower the score would be
            without that interaction (negative: the item would score higher without it).
        signals: named feature -> its exact share of the score (w_f * feature_f), largest first,
            plus "interaction", the learned user x item part (score minus the named signals).
    """

    item_id: object
    score: float
    support: list[tuple[object, float]] = field(default_factory=list)
    signals: dict[str, float] = field(default_factory=dict)

    def to_dict(self, titles: dict | None = None) -> dict:
        """JSON-able: {item_id, score, support: [{item_id, title, contribution}], signals}."""
        return {"item_id": self.item_id, "score": self.score,
                "support": [{"item_id": i, "title": (titles or {}).get(i), "contribution": c}
                            for i, c in self.support],
                "signals": dict(self.signals)}

    def because(self, titles: dict | None = None, n: int = 2) -> str:
        """'because you liked Star Wars (0.41); popular (0.12)': the top support items and signals
        that raised the score (at most `n` of each)."""
        parts = [f"you liked {(titles or {}).get(i) or i} ({c:.2f})" for i, c in self.support[:n] if c > 0]
        parts += [f"{SIGNAL_NAMES.get(s, s)} ({v:.2f})" for s, v in list(self.signals.items())
                  if s != "interaction" and v > 0][:n]
        return ("because " + "; ".join(parts)) if parts else "from the model's learned interaction"


def explain(rec: "MetaRecommender", support: np.ndarray, ratings: np.ndarray, profile_vec: np.ndarray,
            scores: np.ndarray, items: np.ndarray) -> list[Explanation]:
    """Explanations of catalog indices `items` for the user adapted on `support` (indices [K]),
    `ratings` [K] and `profile_vec` [D], whose full scores are `scores` [I]."""
    items = np.asarray(items, np.int64)
    k = len(support)
    by_support: np.ndarray = np.zeros((0, len(items)))
    if k:
        # row j: the user without support item j; K users of K - 1 items, adapted together
        keep = ~np.eye(k, dtype=bool)
        sup = np.stack([support[m] for m in keep]).reshape(k, k - 1)
        rat = np.stack([ratings[m] for m in keep]).reshape(k, k - 1)
        without = rec.score_items(sup, rat, np.repeat(profile_vec[None], k, axis=0), items)  # [K, n]
        by_support = scores[items][None, :] - without
    signals = signal_parts(rec, support, ratings, profile_vec, items)  # [n, F]
    names = rec.model.cfg.features
    out = []
    for c, i in enumerate(items):
        sup = sorted(((rec.item_ids[s], float(by_support[j, c])) for j, s in enumerate(support)),
                     key=lambda t: -t[1])
        sig = {n: float(v) for n, v in zip(names, signals[c])}
        sig = dict(sorted(sig.items(), key=lambda t: -t[1]))
        sig["interaction"] = float(scores[i]) - float(sum(signals[c]))
        out.append(Explanation(item_id=rec.item_ids[i], score=float(scores[i]), support=sup, signals=sig))
    return out


def signal_parts(rec: "MetaRecommender", support: np.ndarray, ratings: np.ndarray, profile_vec: np.ndarray,
                 items: np.ndarray) -> np.ndarray:
    """float64 [n, F]: w_f * feature_f for each requested item and each of the model's features, with
    the weights the user's inner loop adapted (the skip's weights are the head's, always adapted)."""
    cols, full, params = adapt_restricted(rec, np.asarray(support, np.int64), np.asarray(ratings, np.float32),
                                          np.asarray(profile_vec, np.float32), rec.scoring_weights(), items)
    w = skip_weights(params, rec.model.cfg, full).detach()
    w = w[0] if w.dim() == 2 else w  # [F]: one user's adapted copy, or the shared start
    feats = full.feats[0, torch.as_tensor(np.searchsorted(cols, items))].to(w.dtype)  # [n, F]
    return (feats * w).double().cpu().numpy()
