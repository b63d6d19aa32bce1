"""Per-task losses over padded candidate lists: softmax, BCE, BPR (implicit), MSE (explicit ratings).

Every loss returns float [T]: one mean loss per task, so the inner loop can sum them (each task's
gradient then only touches its own adapted copy) and the outer loop can average them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

LOSSES = ("softmax", "bce", "bpr", "mse")


def task_losses(kind: str, scores: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """scores, labels, mask: float [T, N] -> float [T]."""
    if kind == "softmax":
        # multinomial likelihood of the positives among all valid candidates (listwise: the
        # closest of these to full-catalog top-k ranking)
        logits = scores.masked_fill(mask <= 0, float("-inf"))
        logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        pos = (labels > 0).to(scores.dtype) * mask
        return -(torch.where(pos > 0, logp, torch.zeros_like(logp)) * pos).sum(1) / pos.sum(1).clamp(min=1.0)
    if kind == "bce":
        target = (labels > 0).to(scores.dtype)
        loss = F.binary_cross_entropy_with_logits(scores, target, reduction="none")
        return (loss * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    if kind == "bpr":
        pos = (labels > 0).to(scores.dtype) * mask
        neg = (labels <= 0).to(scores.dtype) * mask
        diff = scores.unsqueeze(2) - scores.unsqueeze(1)  # [T, N(pos), N(neg)]
        pair = pos.unsqueeze(2) * neg.unsqueeze(1)
        return (-F.logsigmoid(diff) * pair).sum((1, 2)) / pair.sum((1, 2)).clamp(min=1.0)
    if kind == "mse":
        pos = (labels > 0).to(scores.dtype) * mask  # rated items only
        return (((scores - labels) ** 2) * pos).sum(1) / pos.sum(1).clamp(min=1.0)
    raise ValueError(f"unknown loss {kind!r}; choose from {LOSSES}")
