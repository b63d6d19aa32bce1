"""The start search: the head's starting feature weights and the inner-loop learning rate, chosen on
validation users before meta-training.

How much co-occurrence, text, popularity and recent popularity matter, and how far a few
interactions should move the head, are properties of the dataset (text-rich catalogs lean on
content, dense logs on knn, fast-moving catalogs on the trend), so none is hard-coded: a coordinate
search tries them, scored by the protocol's validator.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from metarec.core.progress import progress
from metarec.data.protocol import MeanValidator, SupportBatch, Validator
from metarec.meta.learners import MetaConfig
from metarec.meta.recommender import MetaRecommender

log = logging.getLogger(__name__)

Prior = dict[str, float]  # feature name -> starting weight of the head's linear skip


@dataclass(frozen=True, kw_only=True)
class StartSearch:
    """The grids the search walks and how far past their edges it goes.

    Attributes:
        prior_grid: (knn, content, pop) starts, all tried at the first inner rate.
        trend_grid: trend weights, tried with every popularity weight and the chosen content.
        ease_grid: (knn, ease) pairs, tried with every popularity weight (when the model has ease).
        inner_lr_grid: inner rates, the first used while the priors are searched.
        content_step, content_max: while the largest content weight wins, try `content_step`
            times it (with every popularity weight), up to `content_max`. A grid's edge is no
            answer: a text-rich catalog wants text to outweigh co-occurrence.
        lr_step, lr_range: while the smallest or largest rate wins, try it divided or multiplied
            by `lr_step`, within `lr_range`.
        quick_users, quick_keep: with at least twice `quick_users` validation users, every
            candidate is scored on a fixed sample of `quick_users` of them and the `quick_keep`
            best on all; on a smaller set a sample would be most of it, and all are scored whole.
    """

    prior_grid: tuple[Prior, ...] = tuple({"knn": 10.0, "content": c, "pop": p}
                                          for c in (0.0, 0.5, 2.0) for p in (0.0, 0.3, 1.0, 3.0))
    trend_grid: tuple[float, ...] = (1.0, 3.0)
    ease_grid: tuple[tuple[float, float], ...] = ((10.0, 3.0), (10.0, 10.0), (0.0, 10.0))
    inner_lr_grid: tuple[float, ...] = (0.1, 0.5)
    content_step: float = 4.0
    content_max: float = 128.0
    lr_step: float = 3.0
    lr_range: tuple[float, float] = (0.01, 5.0)
    quick_users: int = 250
    quick_keep: int = 3


@dataclass
class StartChoice:
    """What the search chose: the prior and rate (set on the model and recommender), the inner loop
    with that rate, its validation NDCG@10 over every validation user, and a report for `describe`."""

    prior: Prior
    inner_lr: float
    meta: MetaConfig
    val_score: float
    report: dict


def search_start(rec: MetaRecommender, validator: Validator, score: Callable[[SupportBatch], np.ndarray],
                 meta: MetaConfig, grid: StartSearch = StartSearch(),
                 place: Callable[[torch.Tensor], None] | None = None, rates: bool = True,
                 set_rate: Callable[[float], None] | None = None) -> StartChoice:
    """Try starts on `validator` and leave the best one set on `rec` (its model's feature weights, its
    inner loop). `score(batch)` scores users with whatever `rec` holds at the time.

    `place(weights)` puts a candidate's feature weights [F] into the model (default: the head's
    `w_feat`; the K-conditioned fit places them at one anchor's support size); `set_rate(lr)` puts a
    candidate inner rate there instead of switching `rec`'s inner loop to it; with `rates` False the
    inner rate stays `meta.inner_lr` and only the priors are searched.

    Coordinate search: every (content, pop) prior at the first rate (and larger content weights while
    the largest wins); then ease x pop and trend x pop with the winning content (when the model has
    those features, and there is a trend window); then the other rates with the winning prior (and
    rates past the edges while an edge wins): 33 validations with every feature, 4 more per content
    step and 1 per rate step, instead of a grid of hundreds."""
    model = rec.model
    w, features = model.head.w_feat, model.cfg.features
    learners: dict[float, tuple] = {}

    def name(g: tuple[Prior, float]) -> str:
        return f"lr={g[1]} " + ",".join(f"{k}={v}" for k, v in g[0].items())

    def use(prior: Prior, lr: float) -> None:
        with torch.no_grad():
            (place or w.copy_)(torch.tensor([prior.get(n, 0.0) for n in features], dtype=w.dtype))
        if set_rate is not None:
            learners.setdefault(lr, None)
            set_rate(lr)
            return
        if lr not in learners:  # one inner loop per rate, made when the search first tries it
            m = replace(meta, inner_lr=lr)
            learners[lr] = m, rec.learner_for(m)
        rec.meta, rec.learner = learners[lr]

    trend = "trend" in features and rec.side.recent is not None
    ease = "ease" in features
    pops = sorted({g["pop"] for g in grid.prior_grid})
    tried: list[tuple[Prior, float]] = []
    scores: list[float] = []
    sample, n_val = getattr(validator, "sample", None), getattr(validator, "n_users", 0)
    quick = sample(grid.quick_users) if sample is not None and n_val >= 2 * grid.quick_users else None
    if not rates:
        grid = replace(grid, inner_lr_grid=(meta.inner_lr,), lr_range=(meta.inner_lr, meta.inner_lr))
    total = (len(grid.prior_grid) + len(grid.inner_lr_grid) - 1 + (len(grid.trend_grid) * len(pops) if trend else 0)
             + (len(grid.ease_grid) * len(pops) if ease else 0) + (grid.quick_keep if quick else 0))
    bar = progress(total=total, desc="feature prior, inner lr", unit="try", leave=False)

    def attempt(prior: Prior, lr: float) -> None:
        use(prior, lr)
        tried.append((prior, lr))
        scores.append((validator if quick is None else quick)(score))
        bar.update()
        log.info("start %d/%d: %s -> validation %.4f", len(scores), bar.total, name((prior, lr)), scores[-1])

    def grow(n: int) -> None:
        """n more tries than the bar planned (a grid extended past a winning edge)."""
        bar.total += n
        bar.refresh()

    def best() -> int:
        """The index in `tried` of the best score so far (the first, on a tie)."""
        return int(np.argmax(scores))

    lr0 = grid.inner_lr_grid[0]
    for prior in grid.prior_grid:
        attempt(prior, lr0)
    top = max(g["content"] for g in grid.prior_grid)
    while tried[best()][0]["content"] == top and top * grid.content_step <= grid.content_max:
        top, base = top * grid.content_step, tried[best()][0]
        grow(len(pops))
        for p in pops:
            attempt({**base, "content": top, "pop": p}, lr0)
    if ease:  # the ease feature with the winning content, beside or instead of knn
        content = tried[best()][0]["content"]
        for kn, e in grid.ease_grid:
            for p in pops:
                attempt({"knn": kn, "content": content, "pop": p, "ease": e}, lr0)
    if trend:
        base = tried[best()][0]
        for t in grid.trend_grid:
            for p in pops:
                attempt({**base, "pop": p, "trend": t}, lr0)
    prior = tried[best()][0]
    for lr in grid.inner_lr_grid[1:]:
        attempt(prior, lr)
    while True:  # past an edge of the rates tried while that edge wins
        lr, rates = tried[best()][1], sorted(learners)
        if lr not in (rates[0], rates[-1]):
            break
        nxt = float(f"{lr / grid.lr_step if lr == rates[0] else lr * grid.lr_step:.3g}")  # 0.0333, not 0.0333333...
        if not grid.lr_range[0] <= nxt <= grid.lr_range[1]:
            break
        grow(1)
        attempt(prior, nxt)

    extra = {}
    if quick is not None:  # the sample's best few, scored on every validation user; the best of those
        finalists = [int(i) for i in np.argsort(-np.asarray(scores), kind="stable")[:grid.quick_keep]]
        full = {}
        for i in finalists:
            use(*tried[i])
            full[i] = validator(score)
            bar.update()
        pick = max(finalists, key=lambda i: full[i])
        prior, lr, start_val = *tried[pick], full[pick]
        extra = {"sample_users": quick.n_users,
                 "val_ndcg@10_all_users": {name(tried[i]): round(full[i], 4) for i in finalists}}
    else:
        i = best()
        (prior, lr), start_val = tried[i], scores[i]
    bar.close()
    use(prior, lr)
    how = f"{len(tried)} candidates"
    if quick is not None:
        how += f" on a sample of {quick.n_users} of them, the best {grid.quick_keep} on all {n_val}"
    log.info("feature prior %s, inner lr %s chosen on validation users (%s)", prior, lr, how)
    report = {"chosen": prior, "inner_lr": lr, "val_ndcg@10": {name(g): round(x, 4) for g, x in zip(tried, scores)},
              **extra}
    return StartChoice(prior=prior, inner_lr=lr, meta=rec.meta if set_rate is None else meta, val_score=start_val,
                       report=report)


MIN_ANCHOR_USERS = 30  # validation users an anchor's own search needs; with fewer, one start serves every K


def search_conditioned_start(rec: MetaRecommender, validator: Validator, score: Callable[[SupportBatch], np.ndarray],
                             meta: MetaConfig, grid: StartSearch = StartSearch()) -> tuple[StartChoice, Callable]:
    """The start search for a network whose start depends on the support size (`ScoringConfig.k_anchors`):
    the whole search (priors and inner rate) on validation users at the high anchor K, then the same
    at the low anchor K (the priors at the high anchor's rate first, then the low anchor's own rate
    when the network has `cond.lr_low`), each placed so the other anchor's start is kept.

    Returns the choice (its `val_score` the mean over the anchors' and `validator`'s K) and the
    validator to early-stop on: that mean. A plain callable validator, a network without anchors, or
    too few validation users at an anchor K give the ordinary one-start search and `validator` itself."""
    model = rec.model
    anchors, at = model.cfg.k_anchors, getattr(validator, "at", None)
    if anchors is None or at is None:
        return search_start(rec, validator, score, meta, grid), validator
    lo_v, hi_v = at(anchors[0]), at(anchors[1])
    if any(v is None or v.n_users < MIN_ANCHOR_USERS for v in (lo_v, hi_v)):
        log.info("one start for every K: fewer than %d validation users at K = %s", MIN_ANCHOR_USERS, anchors)
        return search_start(rec, validator, score, meta, grid), validator
    w, slope = model.head.w_feat, model.cond.w_feat_k
    rate = model.params().get("cond.lr_low")
    with torch.no_grad():
        slope.zero_()  # the high anchor's candidates apply at every K while it is searched
        if rate is not None:
            rate.zero_()
    log.info("start at K = %d (high anchor)", anchors[1])
    hi = search_start(rec, hi_v, score, meta, grid)
    high = w.detach().clone()

    def place_low(v: torch.Tensor) -> None:  # the low anchor's weights; the high anchor's stay `high`
        w.copy_(v)
        slope.copy_(high - v)

    set_rate = None
    if rate is not None:  # the low anchor's own inner rate, as a multiple of the high anchor's
        def set_rate(lr: float) -> None:
            with torch.no_grad():
                rate.fill_(math.log(lr / hi.inner_lr))

        others = tuple(r for r in grid.inner_lr_grid if r != hi.inner_lr)
        grid = replace(grid, inner_lr_grid=(hi.inner_lr, *others))  # the priors at the high anchor's rate
    log.info("start at K = %d (low anchor), inner lr %s", anchors[0], hi.inner_lr)
    lo = search_start(rec, lo_v, score, hi.meta, grid, place=place_low, rates=rate is not None, set_rate=set_rate)
    parts = {v.k: v for v in (lo_v, validator, hi_v)}
    mean = MeanValidator([parts[k] for k in sorted(parts)])
    val = mean(score)
    log.info("start by K: %s (inner lr %s) at K <= %d, %s (inner lr %s) at K >= %d; validation mean over K = %s: "
             "%.4f", lo.prior, lo.inner_lr, anchors[0], hi.prior, hi.inner_lr, anchors[1], mean.ks, val)
    report = {**hi.report, "by_k": {str(anchors[0]): lo.prior, str(anchors[1]): hi.prior},
              "inner_lr_by_k": {str(anchors[0]): lo.inner_lr, str(anchors[1]): hi.inner_lr},
              "low_anchor": lo.report, "val_ks": list(mean.ks), "val_ndcg@10_mean": round(val, 4)}
    return StartChoice(prior=hi.prior, inner_lr=hi.inner_lr, meta=hi.meta, val_score=val, report=report), mean
