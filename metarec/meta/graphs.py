"""The functional meta-step's forward and backward replayed as CUDA graphs, one per batch shape.

On a GPU the batched meta-step is bound by kernel launches, not arithmetic: some 750 small kernels
whose launches cost the host far more time than the GPU spends running them
(benchmarks/results/meta_speed_cuda.md). A CUDA graph records the kernels once and replays them
with one launch. A graph is tied to its input shapes and to the host-side branches taken while it
was recorded, so batches are keyed by the shapes (and broadcast layout) of their tensors, by the
`has_drop()` branch and by `max_pos` rounded up to a power of two (the approx_ndcg loss's positive
columns: extra ones count zero). Each new key is warmed up and captured on first use, following
PyTorch's recipe for capturing a whole network (warm-up on a side stream, gradients set to None,
capture).

The replayed arithmetic is the eager step's, but for the zero terms of a rounded-up `max_pos` (on an
H200 the replayed float32 gradients agreed with the eager ones to 3e-11; tests/unit/meta/test_graphs.py
holds float64 to 1e-10). Parameters must be updated in place (optimisers and
`load_state_dict` do), since the graphs read them where they lie. All graphs share one memory pool,
so they cost one step's activations, not one per key: a replay may overwrite what an earlier replay
left (its loss, its gradients), which is why a call's gradients must be used before the next call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn

from metarec.meta.tasks import TaskBatch
from metarec.models.scoring import ScoreInputs


def _broadcast(t: Tensor) -> bool:
    """A field shared by every task (stride 0 over tasks, as the full catalog's item rows are)."""
    return t.dim() > 0 and t.shape[0] > 1 and t.stride(0) == 0


_TENSOR_FIELDS = tuple(f.name for f in fields(TaskBatch) if f.name != "max_pos")


def _flat(batch: TaskBatch) -> list[Tensor]:
    """The batch's tensors in a fixed order."""
    out: list[Tensor] = []
    for f in _TENSOR_FIELDS:
        v = getattr(batch, f)
        out.extend(getattr(v, n) for n in ScoreInputs._TENSORS) if isinstance(v, ScoreInputs) else out.append(v)
    return out


def _pos_bound(batch: TaskBatch) -> int | None:
    """`max_pos` rounded up to a power of two (at most the outer candidates): few keys, few captures."""
    if batch.max_pos is None:
        return None
    return min(1 << max(batch.max_pos - 1, 0).bit_length(), batch.outer_labels.shape[1])


def _key(batch: TaskBatch) -> tuple:
    return (tuple((tuple(t.shape), t.dtype, t.device, _broadcast(t)) for t in _flat(batch)),
            batch.inner.has_drop(), batch.outer.has_drop(), _pos_bound(batch))


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    bases: list[Tensor]  # what new batches are copied into (a broadcast field: its one row)
    loss: Tensor
    grads: list[Tensor | None]  # filled by each replay, one per parameter (None: no gradient reaches it)

    def load(self, batch: TaskBatch) -> None:
        for base, t in zip(self.bases, _flat(batch)):
            base.copy_(t[:1] if _broadcast(t) else t)


def _static_copy(batch: TaskBatch) -> tuple[TaskBatch, list[Tensor]]:
    """(a batch of the same layout over fresh buffers, those buffers in `_flat` order)."""
    bases, views = [], []
    for t in _flat(batch):
        if _broadcast(t):
            base = t[:1].clone(memory_format=torch.contiguous_format)
            views.append(base.expand(t.shape))
        else:
            base = t.clone(memory_format=torch.contiguous_format)
            views.append(base)
        bases.append(base)
    it = iter(views)
    parts = {}
    for f in _TENSOR_FIELDS:
        v = getattr(batch, f)
        if isinstance(v, ScoreInputs):
            parts[f] = ScoreInputs(*(next(it) for _ in ScoreInputs._TENSORS), task_drops=v.task_drops)
        else:
            parts[f] = next(it)
    return TaskBatch(**parts, max_pos=_pos_bound(batch)), bases


class GraphedMetaLoss:
    """`loss_fn(batch).backward()` as a replayed CUDA graph: leaves each parameter's gradient in its
    `.grad` (set, not added to: call with gradients cleared or to be replaced) and returns the loss,
    detached. One graph per batch key, all in one memory pool (see the module docstring)."""

    def __init__(self, loss_fn: Callable[[TaskBatch], Tensor], params: list[nn.Parameter], warmup: int = 2) -> None:
        self.loss_fn, self.params, self.warmup = loss_fn, list(params), warmup
        self._graphs: dict[tuple, _Captured] = {}
        self._pool = None  # the first capture's pool, shared by the later ones
        self.captures = 0  # graphs captured so far, `reset` or not

    @property
    def n_graphs(self) -> int:
        return len(self._graphs)

    def reset(self) -> None:
        """Drop every graph and the pool they share (their GPU memory); the next call captures anew."""
        self._graphs.clear()
        self._pool = None

    def __call__(self, batch: TaskBatch) -> Tensor:
        key = _key(batch)
        cap = self._graphs.get(key)
        if cap is None:
            cap = self._graphs[key] = self._capture(batch)
            self.captures += 1
        cap.load(batch)
        cap.graph.replay()
        for p, g in zip(self.params, cap.grads):
            p.grad = g
        return cap.loss.detach().clone()

    def _capture(self, batch: TaskBatch) -> _Captured:
        static, bases = _static_copy(batch)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # lazy initialisation (cuBLAS workspaces, ...) outside the capture
            for _ in range(self.warmup):
                self._clear()
                self.loss_fn(static).backward()
        torch.cuda.current_stream().wait_stream(side)
        self._clear()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            loss = self.loss_fn(static)
            loss.backward()
        self._pool = graph.pool()
        grads = [p.grad for p in self.params]
        self._clear()
        # keep the loss's storage, not its autograd graph: a live graph would keep the parameters'
        # AccumulateGrad nodes (made on the capture's stream) for the next capture, which breaks it
        return _Captured(graph, bases, loss.detach(), grads)

    def _clear(self) -> None:
        for p in self.params:
            p.grad = None
