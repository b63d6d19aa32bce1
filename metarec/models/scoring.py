"""The scoring network: item and user representations plus the per-user adaptable head.

One functional forward, `score(params, item_text, inputs)`, serves both meta-learning backends: a
weight may be shared (`[in, out]`) or carry a leading task dimension (`[T, in, out]`, one adapted
copy per user), and `linear` dispatches to matmul or `bmm`/`baddbmm`. Parameter names are grouped:

  shared.*  never adapted (the item-id table: a per-user copy would be catalog-sized)
  body.*    text and profile projections (adapted only with adapt="all")
  head.*    the MLP over user x item interaction and side features (always adapted)
  cond.*    how the start and the inner rate depend on the support size K (meta-learned, never adapted)

The head's linear skip over the side features (knn, content, popularity...) is the largest part of
a score. Its starting weights depend on how much is known about the user: `head.w_feat` is the
start at K = k_anchors[0] and `head.w_feat + cond.w_feat_k` the start at K = k_anchors[1], with
log(1 + K) interpolating between them (`skip_weights`): one user with a single interaction is best
served by popularity and text, one with ten by their own neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metarec.core.errors import ConfigError
from metarec.models.features import ALL_FEATURES


@dataclass(frozen=True, kw_only=True)
class ScoringConfig:
    """Shape of the scoring network.

    Attributes:
        dim: width of item/user vectors.
        hidden: width of the head's hidden layer.
        use_ids: add a learned id embedding for items seen before T (text-only when False).
        id_dropout: probability of dropping an item's id embedding during meta-training, so the
            network also learns to score from text alone (as it must for new items).
        use_profile: add the projected profile-text embedding to the user vector.
        features: which side features (see models.features) feed the head: all of them by default
            (metarec.meta.train leaves "ease" out on catalogs too large for its dense inverse).
        k_anchors: the two support sizes (low, high) whose starts the skip weights interpolate
            between, in log(1 + K), held flat outside them; None: one start for every K (the
            layout of models saved before it existed).
        k_inner_lr: with k_anchors, the inner loop's learning rate also depends on K: the meta
            config's rate at the high anchor, exp(cond.lr_low) times it at the low one, interpolated
            the same way (`inner_rate`). Off by default: on six logs it moved test NDCG@10 by less
            than the noise (experiments/k-conditioning).
    """

    dim: int = 32
    hidden: int = 64
    use_ids: bool = True
    id_dropout: float = 0.25
    use_profile: bool = True
    features: tuple[str, ...] = ALL_FEATURES
    k_anchors: tuple[int, int] | None = (1, 10)
    k_inner_lr: bool = False

    def __post_init__(self) -> None:
        if self.k_anchors is not None and not 0 <= self.k_anchors[0] < self.k_anchors[1]:
            raise ConfigError(f"k_anchors must be two support sizes 0 <= low < high, got {self.k_anchors}")
        if self.dim < 1 or self.hidden < 1:
            raise ConfigError("dim and hidden must be positive")
        if not 0.0 <= self.id_dropout < 1.0:
            raise ConfigError(f"id_dropout must be in [0, 1), got {self.id_dropout}")
        bad = [f for f in self.features if f not in ALL_FEATURES]
        if bad:
            raise ConfigError(f"unknown features {bad}; choose from {ALL_FEATURES}")


@dataclass
class ScoreInputs:
    """One batch of tasks, as tensors (T tasks, N candidates, K support slots, F features).

    items: long [T, N] candidate item indices; feats: float [T, N, F]; item_keep: float [T, N]
    (1 = use the id embedding); support: long [T, K]; support_w: float [T, K] (0 = padding);
    support_keep: float [T, K]; profile: float [T, E]; drop: long [T, N], the support slot each
    candidate's user vector leaves out (-1 = none; the inner loop's leave-one-out).
    """

    items: Tensor
    feats: Tensor
    item_keep: Tensor
    support: Tensor
    support_w: Tensor
    support_keep: Tensor
    profile: Tensor
    drop: Tensor
    # per task, whether any candidate leaves a support slot out, when known without reading `drop`
    # (set by `to()` from the host copy: reading a GPU tensor in `score` stalls the launch queue)
    task_drops: tuple[bool, ...] | None = None

    def select(self, idx: slice) -> "ScoreInputs":
        """Tasks `idx` (a slice: the flags follow it)."""
        flags = self.task_drops[idx] if self.task_drops is not None and isinstance(idx, slice) else None
        return ScoreInputs(*(getattr(self, f)[idx] for f in self._TENSORS), task_drops=flags)

    def columns(self, idx: slice) -> "ScoreInputs":
        """Candidates `idx` of every task (support and profile unchanged): the catalog in blocks."""
        return replace(self, items=self.items[:, idx], feats=self.feats[:, idx], item_keep=self.item_keep[:, idx],
                       drop=self.drop[:, idx])

    def to(self, **kw) -> "ScoreInputs":
        """Moved and/or cast (floats only); a field broadcast over the tasks (stride 0, as the
        catalog is in full-catalog scoring) stays broadcast instead of being copied once per task."""
        flags = self.task_drops
        if flags is None and self.drop.device.type == "cpu" and self.drop.dim() == 2:
            flags = tuple((self.drop >= 0).any(1).tolist())

        def move(t: Tensor) -> Tensor:
            args = kw if t.is_floating_point() else {"device": kw.get("device")}
            if t.dim() and t.shape[0] > 1 and t.stride(0) == 0:
                return t[:1].to(**args).expand(t.shape)
            return t.to(**args)

        return ScoreInputs(*(move(getattr(self, f)) for f in self._TENSORS), task_drops=flags)

    def relabel(self, cols: Tensor) -> "ScoreInputs":
        """The same inputs with item indices (candidates and support) read through `cols`: inputs
        built on a restricted catalog (ItemSide.restrict) mapped back to the whole catalog's indices.
        Candidates shared by every task (stride 0) stay shared."""
        its = self.items
        items = cols[its[0]].expand(its.shape) if its.dim() == 2 and its.stride(0) == 0 else cols[its]
        return replace(self, items=items, support=cols[self.support])

    def has_drop(self) -> bool:
        return any(self.task_drops) if self.task_drops is not None else bool((self.drop >= 0).any())


ScoreInputs._TENSORS = tuple(n for n in ScoreInputs.__dataclass_fields__ if n != "task_drops")  # the tensor fields


def _over_rows(b: Tensor) -> Tensor:
    """A vector [out] (shared) or [T, out] (per task: one adapted copy each), shaped to broadcast
    against [T, N, out] (biases, the side-feature weights)."""
    return b.unsqueeze(1) if b.dim() == 2 else b


def linear(x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    """x [T, N, in] times w [in, out] (shared) or [T, in, out] (per task), plus b [out] or [T, out].

    x may also be [1, N, in] against per-task w: the same inputs (the catalog) for every task."""
    if w.dim() == 3 and x.shape[0] != w.shape[0]:
        y = torch.matmul(x, w)  # broadcast the one row of inputs over the tasks' weights: [T, N, out]
        return y if b is None else y + _over_rows(b)
    if w.dim() == 3:
        if b is None:
            return torch.bmm(x, w)
        return torch.baddbmm(_over_rows(b).expand(x.shape[0], 1, -1), x, w)
    y = x @ w
    return y if b is None else y + _over_rows(b)


def rows(table: Tensor, idx: Tensor) -> Tensor:
    """table[idx] for a trainable table, with a bitwise-reproducible backward.

    The backward of advanced indexing (`table[idx]`) accumulates with index_put_, whose parallel
    CPU kernel sums repeated indices in a thread-dependent order: the same seed then gave different
    weights after a few hundred meta-steps. `F.embedding`'s backward is deterministic."""
    return F.embedding(idx, table)


def project(params: dict[str, Tensor], item_text: Tensor) -> Tensor | None:
    """The whole catalog through a shared text projection, [I, d] (None when it is adapted per task).

    Callers that score several batches with the same shared projection (an inner loop plus the
    query pass) compute it once and pass it to `score`."""
    w = params.get("body.w_text")
    return item_text @ w if w is not None and w.dim() == 2 else None


def score(params: dict[str, Tensor], cfg: ScoringConfig, item_text: Tensor, x: ScoreInputs,
          proj: Tensor | None = None) -> Tensor:
    """Scores (logits) float [T, N]; `proj` is `project(params, item_text)` if already computed."""
    return _head(params, cfg, x, *vectors(params, cfg, item_text, x, proj))


def vectors(params: dict[str, Tensor], cfg: ScoringConfig, item_text: Tensor, x: ScoreInputs,
            proj: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(item vectors v [T or 1, N, d], user vectors u [T, N or 1, d]): everything `score` computes
    before the head, from the body's weights and the id table only (none of the head's), so an
    inner loop that adapts the head alone computes them once instead of once per step."""
    w_text = params["body.w_text"]
    if proj is None and x.items.numel() > item_text.shape[0]:
        proj = project(params, item_text)  # cheaper than projecting every candidate row (None if per task)

    def item_vec(items: Tensor, keep: Tensor) -> Tensor:
        v = rows(proj, items) if proj is not None else linear(item_text[items], w_text)
        if cfg.use_ids:
            v = v + rows(params["shared.id_emb"], items) * keep.unsqueeze(-1)
        return v

    if x.items.dim() == 2 and x.items.stride(0) == 0 and x.item_keep.stride(0) == 0:
        # the same candidates for every task: [1, N, d], or [T, N, d] when each task has its own
        # text projection (adapt="all"; `linear` broadcasts the one row over the tasks' weights)
        v = item_vec(x.items[:1], x.item_keep[:1])
    else:
        v = item_vec(x.items, x.item_keep)  # [T, N, d]
    t, n = x.items.shape
    w = x.support_w
    if not x.support.shape[1]:
        return v, v.new_zeros(t, 1, v.shape[-1])
    vs = item_vec(x.support, x.support_keep)  # [T, K, d]
    tot, wsum = (vs * w.unsqueeze(-1)).sum(1), w.sum(1)  # [T, d], [T]
    if not x.has_drop():
        # nothing left out (query / full-catalog scoring): one user vector per task, the same
        # arithmetic as below with wd = 0, without [T, N, d] gathers over every candidate
        return v, (tot / wsum.clamp(min=1e-6).unsqueeze(-1)).unsqueeze(1)
    # per-candidate user vector without its left-out support slot (drop = -1 leaves none out)
    d_idx = x.drop.clamp(min=0)
    wd = torch.gather(w, 1, d_idx) * (x.drop >= 0).to(w.dtype)  # [T, N]
    vd = torch.gather(vs, 1, d_idx.unsqueeze(-1).expand(-1, -1, vs.shape[-1]))  # [T, N, d]
    return v, (tot.unsqueeze(1) - vd * wd.unsqueeze(-1)) / (wsum.unsqueeze(1) - wd).clamp(min=1e-6).unsqueeze(-1)


HeadInput = Tensor | tuple[Tensor, Tensor]  # see `head_input`


def _head(params: dict[str, Tensor], cfg: ScoringConfig, x: ScoreInputs, v: Tensor, u: Tensor) -> Tensor:
    """The MLP over user x item plus the linear skip over side features; u is [T, N or 1, d]."""
    return head_mlp(params, cfg, x, head_input(params, cfg, x, v, u))


def head_input(params: dict[str, Tensor], cfg: ScoringConfig, x: ScoreInputs, v: Tensor, u: Tensor) -> HeadInput:
    """What the head's first layer reads, from the body's weights alone (none of the head's):
    [u * v, feats] [T, N, d + F] when each candidate has its own user vector; (u, v) when each task
    has one (u [T, 1, d]: `_first_layer_one_user` then never builds the product). An inner loop
    that adapts the head alone computes it once instead of once per step."""
    if cfg.use_profile:
        u = u + linear(x.profile.unsqueeze(1), params["body.w_profile"])
    if u.shape[1] == 1:
        return u, v
    return torch.cat([u * v, x.feats], dim=-1)


def k_position(cfg: ScoringConfig, support_w: Tensor) -> Tensor:
    """float [T]: where each task's support size K lies between the anchors, in log(1 + K): 0 at
    or below k_anchors[0], 1 at or above k_anchors[1] (K counts the support slots with weight > 0)."""
    lo, hi = (math.log1p(a) for a in cfg.k_anchors)
    k = (support_w > 0).sum(1).to(support_w.dtype)
    return ((torch.log1p(k) - lo) / (hi - lo)).clamp(0.0, 1.0)


def skip_weights(params: dict[str, Tensor], cfg: ScoringConfig, x: ScoreInputs) -> Tensor:
    """The linear skip's feature weights for each task's support size: [F] or [T, F] (see the
    module docstring); `head.w_feat` alone for a network without K conditioning."""
    w = params["head.w_feat"]
    slope = params.get("cond.w_feat_k")
    if slope is None:
        return w
    return w + k_position(cfg, x.support_w).unsqueeze(-1) * slope


def head_mlp(params: dict[str, Tensor], cfg: ScoringConfig, x: ScoreInputs, inp: HeadInput) -> Tensor:
    """Scores [T, N] from `head_input`'s output and the head's weights."""
    w1, b1 = params["head.w1"], params["head.b1"]
    h = _first_layer_one_user(*inp, x.feats, w1, b1) if isinstance(inp, tuple) else linear(inp, w1, b1)
    h = torch.relu_(h)  # in place: the [T, N, hidden] block is the largest
    mlp = linear(h, params["head.w2"], params["head.b2"]).squeeze(-1)
    # linear skip over the side features: per-user adaptation re-weighs knn / content / popularity
    skip = (x.feats * _over_rows(skip_weights(params, cfg, x))).sum(-1)
    return skip + mlp


def _first_layer_one_user(u: Tensor, v: Tensor, feats: Tensor, w1: Tensor, b1: Tensor) -> Tensor:
    """[u * v, feats] @ w1 + b1 for one user vector per task (u [T, 1, d]), without building the
    [T, N, d] product or its concatenation with the features: (u * v) @ w1[:d] = v @ (u^T * w1[:d]),
    one [T, d, hidden] matrix per task. Full-catalog scoring spends most of its time here."""
    d = v.shape[-1]
    w_uv = u.transpose(1, 2) * w1[..., :d, :]  # [T, d, hidden]
    h = torch.matmul(v, w_uv)  # v is [T, N, d] or one shared catalog row [1, N, d]
    w_f = w1[..., d:, :]
    h = h.baddbmm_(feats, w_f if w_f.dim() == 3 else w_f.expand(h.shape[0], *w_f.shape))
    return h.add_(_over_rows(b1))


class _Group(nn.Module):
    """A named bag of parameters (plain attributes, so learn2learn can clone and update them)."""

    def __init__(self, **tensors: Tensor) -> None:
        super().__init__()
        for k, v in tensors.items():
            setattr(self, k, nn.Parameter(v))


class ScoringModel(nn.Module):
    """Parameters of the scoring network; `forward` is `score` with the module's own weights."""

    def __init__(self, cfg: ScoringConfig, text_dim: int, n_items: int, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        d, h, f = cfg.dim, cfg.hidden, len(cfg.features)

        def init(*shape: int, scale: float) -> Tensor:
            return torch.randn(*shape, generator=generator) * scale

        self.shared = _Group(id_emb=init(n_items, d, scale=0.01)) if cfg.use_ids else _Group()
        body = {"w_text": init(text_dim, d, scale=text_dim ** -0.5)}
        if cfg.use_profile:
            body["w_profile"] = init(text_dim, d, scale=0.1 * text_dim ** -0.5)
        self.body = _Group(**body)
        # start near a sensible ranking (mostly item-kNN, a little popularity); the MLP residual
        # starts small and meta-training learns what the prior misses
        prior = {"knn": 10.0, "content": 0.5, "pop": 1.0}  # every other feature starts at 0
        self.head = _Group(w_feat=torch.tensor([prior.get(n, 0.0) for n in cfg.features]),
                           w1=init(d + f, h, scale=(d + f) ** -0.5), b1=torch.zeros(h),
                           w2=init(h, 1, scale=0.1 * h ** -0.5), b2=torch.zeros(1))
        if cfg.k_anchors is not None:  # the same start at every K until the start search or training moves it
            cond = {"w_feat_k": torch.zeros(f)}
            if cfg.k_inner_lr:
                cond["lr_low"] = torch.zeros(())
            self.cond = _Group(**cond)

    def params(self) -> dict[str, Tensor]:
        return dict(self.named_parameters())

    def inner_rate(self, params: dict[str, Tensor], x: ScoreInputs) -> Tensor | None:
        """float [T]: each task's inner learning rate as a multiple of the meta config's, from its
        support size: 1 at or above the high anchor K, exp(cond.lr_low) at or below the low one
        (None when the rate does not depend on K)."""
        g = params.get("cond.lr_low")
        if g is None:
            return None
        return torch.exp((1.0 - k_position(self.cfg, x.support_w)) * g)

    def adaptable_names(self, adapt: Literal["head", "all"]) -> list[str]:
        return [n for n, _ in self.named_parameters()
                if n.startswith("head.") or (adapt == "all" and n.startswith("body."))]

    def score_fn(self, params: dict[str, Tensor], item_text: Tensor, x: ScoreInputs,
                 proj: Tensor | None = None, fixed: HeadInput | None = None) -> Tensor:
        """The functional forward the meta-learners call (params may carry a task dimension);
        `fixed`: `inner_fixed`'s head input for these inputs, reused instead of recomputed."""
        if fixed is not None:
            return head_mlp(params, self.cfg, x, fixed)
        return score(params, self.cfg, item_text, x, proj)

    def inner_fixed(self, params: dict[str, Tensor], item_text: Tensor, x: ScoreInputs, proj: Tensor | None,
                    adapted: list[str]) -> HeadInput | None:
        """The head's input for `x` (`head_input`) when no `adapted` weight changes it (the head
        alone is adapted), for an inner loop to compute once; None when it changes with the steps."""
        if any(not n.startswith("head.") for n in adapted):
            return None
        return head_input(params, self.cfg, x, *vectors(params, self.cfg, item_text, x, proj))

    def forward(self, item_text: Tensor, x: ScoreInputs) -> Tensor:  # noqa: D401
        return self.score_fn(self.params(), item_text, x)
