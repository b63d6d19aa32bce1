"""Per-task losses over padded candidate lists: softmax, BCE, BPR (implicit), MSE (explicit ratings),
and approx-NDCG@10 (an outer loss only).

Every loss returns float [T]: one mean loss per task, so the inner loop can sum them (each task's
gradient then only touches its own adapted copy) and the outer loop can average them.

Why approx-NDCG: the multinomial softmax over a user's next 200 items rewards pulling deep-tail
positives up and flattening the scores; on ML-100K its minimisation lowers NDCG@10 on the very
tasks it trains on (experiments/meta-objective/). approx-NDCG@10 (Qin, Liu and Li 2010,
"A general approximation framework for direct optimization of information retrieval measures")
replaces each positive's rank by a sum of sigmoids and its top-10 cut by one more sigmoid, so its
gradient is largest for positives near the cut and vanishes for those far below it
(experiments/meta-objective/outer_loss.md compares the two).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

LOSSES = ("softmax", "bce", "bpr", "mse")  # inner and outer losses
OUTER_LOSSES = LOSSES + ("approx_ndcg",)  # approx_ndcg ranks a query set against the catalog: outer only

APPROX_TAU = 1.5  # sigmoid temperature, in units of the task's score gap between adjacent ranks at the top
APPROX_CUT_TAU = 2.0  # temperature of the top-10 cut, in ranks
APPROX_CUT = 10


def task_losses(kind: str, scores: Tensor, labels: Tensor, mask: Tensor, n_items: int | None = None,
                max_pos: int | None = None) -> Tensor:
    """scores, labels, mask: float [T, N] -> float [T]. `n_items`: the catalog size, which
    approx_ndcg needs to scale sampled negatives up to the whole catalog (None: the candidates are
    the whole catalog). `max_pos`: see `approx_ndcg`."""
    return loss_fn(kind, labels, mask, n_items, max_pos)(scores)


def loss_fn(kind: str, labels: Tensor, mask: Tensor, n_items: int | None = None,
            max_pos: int | None = None) -> Callable[[Tensor], Tensor]:
    """`task_losses` with the labels and mask bound: what depends on them alone (which candidates
    count, the denominators) is computed once, so an inner loop that scores the same support set at
    every step does not redo it (each op is a kernel launch on a GPU). Same arithmetic, same values."""
    if kind not in OUTER_LOSSES:
        raise ValueError(f"unknown loss {kind!r}; choose from {OUTER_LOSSES}")
    if kind == "approx_ndcg":
        return lambda scores: -approx_ndcg(scores, labels, mask, n_items, max_pos=max_pos)
    consts: dict[torch.dtype, tuple] = {}  # per score dtype (a float64 parity run scores in float64)

    def bound(scores: Tensor) -> Tensor:
        c = consts.get(scores.dtype)
        if c is None:
            c = consts[scores.dtype] = _constants(kind, labels, mask, scores.dtype)
        return _LOSS[kind](scores, labels, *c)

    return bound


def _constants(kind: str, labels: Tensor, mask: Tensor, dtype: torch.dtype) -> tuple:
    """The label- and mask-only tensors each loss reads (see `_LOSS`)."""
    if kind == "softmax":
        pos = (labels > 0).to(dtype) * mask
        # an additive mask (0 or -inf) instead of masked_fill: the same logits, and its backward is
        # the identity (the gradient there is exp(-inf - lse) = 0 anyway)
        invalid = torch.zeros_like(mask, dtype=dtype).masked_fill_(mask <= 0, float("-inf"))
        return invalid, pos <= 0, pos, -pos.sum(1).clamp(min=1.0)
    if kind == "bce":
        return (labels > 0).to(dtype), mask, mask.sum(1).clamp(min=1.0)
    if kind == "bpr":
        pos = (labels > 0).to(dtype) * mask
        neg = (labels <= 0).to(dtype) * mask
        pair = pos.unsqueeze(2) * neg.unsqueeze(1)
        return pair, pair.sum((1, 2)).clamp(min=1.0)
    pos = (labels > 0).to(dtype) * mask  # mse: rated items only
    return pos, pos.sum(1).clamp(min=1.0)


def _softmax(scores: Tensor, labels: Tensor, invalid: Tensor, not_pos: Tensor, pos: Tensor,
             minus_n_pos: Tensor) -> Tensor:
    # multinomial likelihood of the positives among all valid candidates (listwise: the closest of
    # these to full-catalog top-k ranking). Zeroing the non-positives first keeps -inf * 0 out;
    # x / -n is exactly -(x / n), one op fewer per call
    logits = scores + invalid
    logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return (logp.masked_fill(not_pos, 0.0) * pos).sum(1) / minus_n_pos


def _bce(scores: Tensor, labels: Tensor, target: Tensor, mask: Tensor, n: Tensor) -> Tensor:
    loss = F.binary_cross_entropy_with_logits(scores, target, reduction="none")
    return (loss * mask).sum(1) / n


def _bpr(scores: Tensor, labels: Tensor, pair: Tensor, n: Tensor) -> Tensor:
    diff = scores.unsqueeze(2) - scores.unsqueeze(1)  # [T, N(pos), N(neg)]
    return (-F.logsigmoid(diff) * pair).sum((1, 2)) / n


def _mse(scores: Tensor, labels: Tensor, pos: Tensor, n: Tensor) -> Tensor:
    return (((scores - labels) ** 2) * pos).sum(1) / n


_LOSS = {"softmax": _softmax, "bce": _bce, "bpr": _bpr, "mse": _mse}


def approx_ndcg(scores: Tensor, labels: Tensor, mask: Tensor, n_items: int | None = None, *, cut: int = APPROX_CUT,
                tau: float = APPROX_TAU, cut_tau: float = APPROX_CUT_TAU, max_pos: int | None = None) -> Tensor:
    """Smooth NDCG@cut per task, float [T], binary relevance (labels > 0).

    max_pos: at least the most positives any task has, when the caller knows it on the host (the
    positives are gathered into that many columns; a larger bound adds columns that count zero);
    None = read it from `labels` and `mask`.

    A positive's rank over the catalog is approximated by 1 + sum_j w_j sigmoid((s_j - s_i) / t)
    over the other valid candidates j, where w_j is 1 for a positive and (catalog negatives /
    sampled negatives) for a negative, so sampled negatives stand for the catalog. Its gain is
    sigmoid((cut + 0.5 - rank) / cut_tau) / log2(1 + rank); the ideal DCG counts min(positives,
    cut) items. As tau and cut_tau go to 0 this is the exact NDCG@cut of the full-catalog ranking
    (with every negative sampled). Tasks without positives score 0.

    t = tau * (the task's score gap per catalog rank over its top 2 * cut candidates: their score
    range over their summed weights less one, held constant in the gradient). A temperature fixed in
    score units saturates every sigmoid near the top when a model spreads its top scores widely (on
    the synthetic implicit log the top 10 span 5x the score range they span on ML-100K), and then
    nothing is learnt.
    """
    valid = mask > 0
    pos = ((labels > 0) & valid).to(scores.dtype)
    neg = ((labels <= 0) & valid).to(scores.dtype)
    n_pos = pos.sum(1, keepdim=True)
    n_neg = neg.sum(1, keepdim=True)
    if n_items is None:
        scale = torch.ones_like(n_neg)
    else:
        scale = ((n_items - n_pos) / n_neg.clamp(min=1.0)).clamp(min=1.0)
    weight = pos + neg * scale  # [T, N]
    with torch.no_grad():
        top = min(2 * cut, scores.shape[1])
        best, where = scores.masked_fill(~valid, float("-inf")).topk(top, dim=1)
        last = (valid.sum(1, keepdim=True).clamp(1, top) - 1).long()  # the lowest valid one among them
        ranks = (weight.gather(1, where) * (torch.arange(top, device=scores.device) <= last)).sum(1, keepdim=True) - 1
        spread = (best[:, :1] - best.gather(1, last)).nan_to_num(0.0) / ranks.clamp(min=1.0)
        temp = tau * spread.clamp(min=1e-6)  # [T, 1]
    if max_pos is None:  # read from the device: a wait for the GPU, and no CUDA graph can capture it
        max_pos = int(n_pos.max().item()) if scores.shape[0] else 0
    p = max(max_pos, 1)
    idx = torch.argsort(pos, dim=1, descending=True, stable=True)[:, :p]  # each task's positives first
    s_pos, is_pos = scores.gather(1, idx), pos.gather(1, idx)  # [T, P]
    above = torch.sigmoid((scores.unsqueeze(1) - s_pos.unsqueeze(2)) / temp.unsqueeze(2))  # [T, P, N]
    rank = 0.5 + (above * weight.unsqueeze(1)).sum(2)  # the positive itself adds sigmoid(0) * 1
    gain = torch.sigmoid((cut + 0.5 - rank) / cut_tau) / torch.log2(1.0 + rank)
    disc = 1.0 / torch.log2(torch.arange(2, cut + 2, dtype=scores.dtype, device=scores.device))
    ideal = torch.cumsum(disc, 0)[(n_pos.squeeze(1).clamp(1, cut) - 1).long()]
    return (gain * is_pos).sum(1) / ideal
