"""MAML, first-order MAML, MetaSGD and ANIL with two interchangeable backends.

`functional`: every task of a meta-batch adapted at once. The adapted weights carry a leading task
dimension ([T, in, out]), the forward runs `bmm`, and one `torch.autograd.grad` over the sum of
per-task losses gives each task its own gradient (tasks share no adapted weight).
`learn2learn`: `l2l.algorithms.MAML` / `MetaSGD`, `clone()` then `adapt(loss)`, one task at a time.

Both return the same outer loss (the mean over tasks of the query loss after adaptation), so a
float64 parity test can compare them to 1e-8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from metarec.core.errors import ConfigError
from metarec.meta.losses import LOSSES, OUTER_LOSSES, loss_fn, task_losses
from metarec.meta.tasks import TaskBatch
from metarec.models.scoring import ScoreInputs, ScoringModel, project

ALGORITHMS = ("maml", "fomaml", "metasgd", "anil")


@dataclass(frozen=True, kw_only=True)
class MetaConfig:
    """The inner loop and how the outer gradient flows through it.

    algorithm: "maml" (second order), "fomaml" (first order), "metasgd" (learned per-parameter
    inner learning rates, second order), "anil" (second-order MAML that adapts the head only).
    adapt: which parameters the inner loop changes ("head" = ANIL/MeLU-style local update, or "all"
    dense layers; the item-id table is always shared).
    loss: the inner loop's loss on the support set, and the query loss unless `outer_loss` is set.
    outer_loss: the query (meta-training) loss when it differs from the inner one: "approx_ndcg"
    optimises a smooth NDCG@10 of each query set against the catalog (see meta.losses).

    These defaults are the bare algorithm's (outer loss = inner loss). The `metarec` method, the CLI
    and `meta_train` start from `MetaRecMethod.default_meta`, which sets outer_loss="approx_ndcg":
    vary that one with `dataclasses.replace` to change a single setting.
    """

    algorithm: Literal["maml", "fomaml", "metasgd", "anil"] = "maml"
    adapt: Literal["head", "all"] = "head"
    inner_steps: int = 3
    inner_lr: float = 0.5
    loss: Literal["softmax", "bce", "bpr", "mse"] = "softmax"
    outer_loss: Literal["softmax", "bce", "bpr", "mse", "approx_ndcg"] | None = None
    backend: Literal["functional", "learn2learn"] = "functional"

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        if self.adapt not in ("head", "all"):
            raise ConfigError(f"adapt must be 'head' or 'all', got {self.adapt!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.outer_loss is not None and self.outer_loss not in OUTER_LOSSES:
            raise ConfigError(f"outer_loss must be one of {OUTER_LOSSES} or None, got {self.outer_loss!r}")
        if self.outer_loss == "mse" and self.loss != "mse":
            raise ConfigError("outer_loss 'mse' needs rating labels: set loss='mse' as well")
        if self.backend not in ("functional", "learn2learn"):
            raise ConfigError(f"backend must be 'functional' or 'learn2learn', got {self.backend!r}")
        if self.inner_steps < 0 or self.inner_lr < 0:
            raise ConfigError("inner_steps and inner_lr must be >= 0")

    @property
    def query_loss(self) -> str:
        """The loss meta-training minimises on each task's query set."""
        return self.outer_loss or self.loss

    @property
    def adapt_scope(self) -> str:
        return "head" if self.algorithm == "anil" else self.adapt

    @property
    def second_order(self) -> bool:
        return self.algorithm != "fomaml"


class LearnedLRs(nn.Module):
    """MetaSGD's per-parameter inner learning rates, one tensor per adapted weight."""

    def __init__(self, model: ScoringModel, names: list[str], init: float) -> None:
        super().__init__()
        params = model.params()
        self.names = list(names)
        self.lrs = nn.ParameterList([nn.Parameter(torch.full_like(params[n], init)) for n in names])

    def as_dict(self) -> dict[str, Tensor]:
        return dict(zip(self.names, self.lrs))


def _task_sum_grad(losses: Tensor, weights: list[Tensor], create_graph: bool) -> tuple[Tensor, ...]:
    """Gradient of the sum of the per-task losses [T] (each task's reaches only its own adapted
    copy), seeded with ones instead of summing first: the same gradient, two ops fewer per step."""
    return torch.autograd.grad(losses, weights, grad_outputs=torch.ones_like(losses), create_graph=create_graph)


def sgd_step(cur: dict[str, Tensor], names: list[str], grads: tuple[Tensor, ...],
             lr: float | list[Tensor]) -> dict[str, Tensor]:
    """{name: cur - lr * grad} for every adapted weight, as two multi-tensor ops (`torch._foreach_*`,
    as torch.optim uses them): on a GPU one kernel launch each instead of two per weight, which
    counts because a meta-step there is bound by launches. Computed as cur + grad * (-lr): negation
    is exact, so the values are those of cur - lr * grad, and the backward needs no negation.
    `lr`: one rate, or MetaSGD's learned rates (one tensor per weight, broadcast over the tasks)."""
    step = torch._foreach_mul(list(grads), torch._foreach_neg(lr) if isinstance(lr, list) else -lr)
    return dict(zip(names, torch._foreach_add([cur[n] for n in names], step)))


class FunctionalMeta:
    """Batched inner loop over per-task weight copies (see module docstring)."""

    def __init__(self, model: ScoringModel, cfg: MetaConfig, item_text: Tensor) -> None:
        self.model, self.cfg, self.item_text = model, cfg, item_text
        self.names = model.adaptable_names(cfg.adapt_scope)
        self.lrs = LearnedLRs(model, self.names, cfg.inner_lr) if cfg.algorithm == "metasgd" else None

    def outer_parameters(self) -> list[nn.Parameter]:
        return list(self.model.parameters()) + (list(self.lrs.parameters()) if self.lrs is not None else [])

    def shared_projection(self, params: dict[str, Tensor]) -> Tensor | None:
        """The catalog's text projection when the inner loop leaves it alone (computed once per batch)."""
        return None if "body.w_text" in self.names else project(params, self.item_text)

    def adapt(self, inputs: ScoreInputs, labels: Tensor, mask: Tensor, *, steps: int | None = None,
              create_graph: bool | None = None, params: dict[str, Tensor] | None = None,
              proj: Tensor | None = None, first_order: bool = False) -> dict[str, Tensor]:
        """Adapted weights {name: [T, ...]} after the inner loop on (inputs, labels, mask).

        create_graph: differentiate through the inner gradients (second-order MAML, MetaSGD);
        without it the result is detached (inference), unless `first_order` (FOMAML): each
        gradient is then a constant applied to weights that stay in the graph, so
        d theta' / d theta = I."""
        params = params if params is not None else self.model.params()
        if proj is None:
            proj = self.shared_projection(params)
        t = inputs.items.shape[0]
        steps = self.cfg.inner_steps if steps is None else steps
        create_graph = self.cfg.second_order if create_graph is None else create_graph
        fast = {n: params[n].unsqueeze(0).expand(t, *params[n].shape) for n in self.names}
        lr = list(self.lrs.lrs) if self.lrs is not None else self.cfg.inner_lr  # MetaSGD's: in self.names' order
        rate = getattr(self.model, "inner_rate", None)
        factor = rate(params, inputs) if rate is not None and steps else None
        if factor is not None:  # a rate per task, from its support size: [T, 1, ...] against each [T, ...] weight
            lr = [(lr[j] if isinstance(lr, list) else lr) * factor.view(-1, *[1] * params[n].dim())
                  for j, n in enumerate(self.names)]
        fixed = self._fixed(params, inputs, proj, create_graph) if steps else None
        inner_loss = loss_fn(self.cfg.loss, labels, mask)
        for _ in range(steps):
            # without create_graph (inference, FOMAML) each gradient is taken at detached leaves
            cur = fast if create_graph else {n: v.detach().requires_grad_(True) for n, v in fast.items()}
            with torch.enable_grad():
                s = self.model.score_fn({**params, **cur}, self.item_text, inputs, proj, fixed=fixed)
                grads = _task_sum_grad(inner_loss(s), [cur[n] for n in self.names], create_graph)
            fast = sgd_step(fast if first_order else cur, self.names, grads, lr)
        return fast if create_graph or first_order else {n: v.detach() for n, v in fast.items()}

    def _fixed(self, params: dict[str, Tensor], inputs: ScoreInputs, proj: Tensor | None, graph: bool):
        """What the inner loop's scores share across its steps (the user and item vectors, when only
        the head adapts), or None. With `graph` (meta-training) it stays in the graph, so the outer
        gradient reaches the body through it; for inference it is a constant."""
        fixed_fn = getattr(self.model, "inner_fixed", None)
        if fixed_fn is None:
            return None
        with torch.set_grad_enabled(graph and torch.is_grad_enabled()):
            return fixed_fn(params, self.item_text, inputs, proj, self.names)

    def meta_loss(self, batch: TaskBatch) -> Tensor:
        """Mean over tasks of the query loss after adapting each task on its support set."""
        return task_losses(self.cfg.query_loss, self.query_scores(batch), batch.outer_labels, batch.outer_mask,
                           n_items=self.item_text.shape[0], max_pos=batch.max_pos).mean()

    def query_scores(self, batch: TaskBatch) -> Tensor:
        """float [T, N] query-candidate scores after each task's inner loop (differentiable)."""
        params = self.model.params()
        proj = self.shared_projection(params)
        fomaml = self.cfg.algorithm == "fomaml"
        fast = self.adapt(batch.inner, batch.inner_labels, batch.inner_mask, params=params, proj=proj,
                          create_graph=False if fomaml else None, first_order=fomaml)
        return self.model.score_fn({**params, **fast}, self.item_text, batch.outer, proj)


class _Adaptable(nn.Module):
    """What learn2learn clones: the adapted parameter groups of a ScoringModel (shared objects)."""

    def __init__(self, model: ScoringModel, scope: str) -> None:
        super().__init__()
        if scope == "all":  # registration order = the model's parameter order (body before head)
            self.body = model.body
        self.head = model.head


class L2LMeta:
    """learn2learn backend: `clone()` + `adapt(loss)` per task, then the query loss."""

    def __init__(self, model: ScoringModel, cfg: MetaConfig, item_text: Tensor) -> None:
        import learn2learn as l2l

        self.model, self.cfg, self.item_text = model, cfg, item_text
        self.target = _Adaptable(model, cfg.adapt_scope)
        self.names = [n for n, _ in self.target.named_parameters()]
        if cfg.algorithm == "metasgd":
            self.learner = l2l.algorithms.MetaSGD(self.target, lr=cfg.inner_lr, first_order=False)
            # share the functional backend's layout: one learned-rate tensor per adapted weight, by name
            self.lrs = LearnedLRs(model, self.names, cfg.inner_lr)
            self.learner.lrs = nn.ParameterList(list(self.lrs.lrs))
        else:
            self.lrs = None
            self.learner = l2l.algorithms.MAML(self.target, lr=cfg.inner_lr,
                                               first_order=cfg.algorithm == "fomaml", allow_unused=True)

    def outer_parameters(self) -> list[nn.Parameter]:
        return list(self.model.parameters()) + (list(self.lrs.parameters()) if self.lrs is not None else [])

    def _params(self, clone) -> dict[str, Tensor]:
        return {**self.model.params(), **dict(clone.module.named_parameters())}

    def adapt_task(self, batch: TaskBatch, t: int):
        task = batch.task(t)
        clone = self.learner.clone()
        rate = getattr(self.model, "inner_rate", None)
        factor = rate(self.model.params(), task.inner) if rate is not None else None
        if factor is not None:  # the task's rate from its support size, as in the functional backend
            if self.cfg.algorithm == "metasgd":
                clone.lrs = [lr * factor[0] for lr in clone.lrs]
            else:
                clone.lr = clone.lr * factor[0]
        for _ in range(self.cfg.inner_steps):
            s = self.model.score_fn(self._params(clone), self.item_text, task.inner)
            clone.adapt(task_losses(self.cfg.loss, s, task.inner_labels, task.inner_mask).sum())
        return clone, task

    def meta_loss(self, batch: TaskBatch) -> Tensor:
        total = 0.0
        for t in range(batch.n_tasks):
            clone, task = self.adapt_task(batch, t)
            s = self.model.score_fn(self._params(clone), self.item_text, task.outer)
            total = total + task_losses(self.cfg.query_loss, s, task.outer_labels, task.outer_mask,
                                        n_items=self.item_text.shape[0]).sum()
        return total / batch.n_tasks


def make_learner(model: ScoringModel, cfg: MetaConfig, item_text: Tensor):
    """The learner for `meta` over `model`: the functional (batched) or learn2learn backend."""
    return (FunctionalMeta if cfg.backend == "functional" else L2LMeta)(model, cfg, item_text)
