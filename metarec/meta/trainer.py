"""The meta-training loop: sample tasks, meta-step, validate, keep the best, resume exactly.

Read top to bottom: `fit()` runs `steps` outer updates; every `eval_every` steps it calls the
injected `evaluate(model) -> float` (validation users' NDCG@10 at K=5 with the protocol's own code,
supplied by the layer above), keeps the best weights, and stops after `patience` evaluations without
improvement. With `out` set, it checkpoints the best model and a resumable trainer state atomically.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from metarec.core.config import to_dict
from metarec.core.distributed import all_reduce_grads, barrier, check_batch, is_main, shard, world
from metarec.core.errors import ConfigError
from metarec.core.progress import progress
from metarec.core.threads import numpy_single_thread
from metarec.meta import checkpoint as ckpt
from metarec.meta.graphs import GraphedMetaLoss
from metarec.meta.learners import MetaConfig, make_learner
from metarec.meta.tasks import MetaData, sample_tasks
from metarec.models.scoring import ScoringModel

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Outer loop. `meta=False` trains the same network on pooled tasks without an inner loop."""

    steps: int = 300
    meta_batch: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.0
    clip: float = 5.0
    k_min: int = 1
    k_max: int = 10
    n_query: int = 200
    n_neg: int = 500  # -1: whole catalog when it has <= max_full_catalog items
    max_full_catalog: int = 5000
    n_inner_neg: int = 20  # inner-loop negatives per support item
    p_first: float = 1.0
    neg_power: float = 0.0
    recent_fraction: float = 1.0
    eval_every: int = 20
    patience: int = 5
    meta: bool = True
    keep_best: bool = True  # False: no early stopping; the last step's weights are the model
    seed: int = 0
    tensorboard: str | None = None
    # replay each meta-step's forward + backward as a CUDA graph (meta/graphs.py): "auto" = when the
    # network is on a CUDA device and the backend is functional; "on" = that, or a ConfigError; "off"
    cuda_graphs: Literal["auto", "on", "off"] = "auto"

    def __post_init__(self) -> None:
        if self.steps < 0 or self.meta_batch < 1 or self.k_min < 0 or self.k_max < self.k_min:
            raise ConfigError("need steps >= 0, meta_batch >= 1, 0 <= k_min <= k_max")
        if self.eval_every < 1 or self.patience < 1:
            raise ConfigError("eval_every and patience must be >= 1")
        if self.cuda_graphs not in ("auto", "on", "off"):
            raise ConfigError(f"cuda_graphs must be 'auto', 'on' or 'off', got {self.cuda_graphs!r}")
        if self.tensorboard and importlib.util.find_spec("tensorboard") is None:
            # said here, before the catalog side is built, not when training starts
            raise ConfigError("TensorBoard logging needs the tensorboard package: pip install 'metarec[tensorboard]'")


def use_cuda_graphs(mode: str, device: torch.device, backend: str) -> bool:
    """Whether meta-steps are replayed as CUDA graphs (`TrainConfig.cuda_graphs` on `device` with
    `backend`); a ConfigError for "on" where they cannot be. Callers that know the device before the
    trainer exists (MetaRecMethod) ask too, to refuse before any work."""
    possible = device.type == "cuda" and backend == "functional"
    if mode == "on" and not possible:
        raise ConfigError(f"cuda_graphs='on' needs a CUDA device and the functional backend (device {str(device)!r}, "
                          f"backend {backend!r})")
    return possible and mode != "off"


class MetaTrainer:
    """Runs the outer loop over a model: meta-steps, validation, early stopping, exact resume."""
    def __init__(self, model: ScoringModel, item_text: torch.Tensor, md: MetaData, meta: MetaConfig,
                 train: TrainConfig, evaluate: Callable[[ScoringModel, object], float] | None = None,
                 tuner=None, on_text: Callable[[np.ndarray], None] | None = None) -> None:
        """`tuner`: an `encoders.adapters.ItemTextTuner` whose LoRA adapters train with the network
        (see `_text_for`); `on_text(vectors)`: called with the catalog's new unit vectors whenever it
        is re-encoded (at each evaluation), after `item_text` and the side's text hold them."""
        self.model, self.item_text, self.md, self.meta_cfg, self.cfg = model, item_text, md, meta, train
        inner = meta if train.meta else MetaConfig(**{**to_dict(meta), "inner_steps": 0})
        self.learner = make_learner(model, inner, item_text)
        self.opt = torch.optim.Adam(self.learner.outer_parameters(), lr=train.lr, weight_decay=train.weight_decay)
        self.tuner, self.on_text = tuner, on_text
        if tuner is not None:
            self.opt.add_param_group({"params": tuner.parameters(), "lr": tuner.cfg.lr, "weight_decay": 0.0})
        self.best_text: np.ndarray | None = None  # the catalog's vectors at the best step, with adapters
        check_batch(train.meta_batch)
        graphs = use_cuda_graphs(train.cuda_graphs, item_text.device, inner.backend) and world()[1] == 1 \
            and tuner is None
        self.graphed = GraphedMetaLoss(self.learner.meta_loss, self.learner.outer_parameters()) if graphs else None
        self.evaluate = evaluate
        self.step = 0
        self.best = -math.inf
        self.best_step = 0
        self.bad_evals = 0
        self.history: list[dict] = []
        self.rng = np.random.default_rng([train.seed, 7])
        self.best_state = self._state()

    # -- state ------------------------------------------------------------------------------
    def _state(self) -> dict[str, torch.Tensor]:
        st = {f"model.{k}": v.detach().clone() for k, v in self.model.state_dict().items()}
        if self.tuner is not None:
            st.update({f"tuner.{n}": p.detach().clone() for n, p in self.tuner.named_parameters()})
        if getattr(self.learner, "lrs", None) is not None:
            st.update({f"lrs.{n}": p.detach().clone() for n, p in self.learner.lrs.as_dict().items()})
        return st

    def _load_state(self, st: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict({k[6:]: v for k, v in st.items() if k.startswith("model.")})
        if self.tuner is not None:
            with torch.no_grad():
                for n, p in self.tuner.named_parameters():
                    p.copy_(st[f"tuner.{n}"])
        if getattr(self.learner, "lrs", None) is not None:
            with torch.no_grad():
                for n, p in self.learner.lrs.as_dict().items():
                    p.copy_(st[f"lrs.{n}"])

    def save(self, out: Path) -> None:
        """Best model (for inference) and the live trainer state (for resume).

        Called by `fit` at every evaluation; after `fit` returns the model holds the best weights,
        so calling it then would record those as the live state.
        """
        ckpt.save_tensors(out / "model.safetensors", self.best_state)
        live = {f"live.{k}": v for k, v in self._state().items()}
        opt_t, opt_meta = ckpt.optimizer_state(self.opt)
        live.update(opt_t)
        live["rng.torch"] = torch.get_rng_state()
        ckpt.save_tensors(out / "trainer.safetensors", live)
        ckpt.save_json(out / "trainer.json", {
            "step": self.step, "best": self.best, "best_step": self.best_step, "bad_evals": self.bad_evals,
            "history": self.history, "optimizer": opt_meta, "rng_numpy": self.rng.bit_generator.state,
        })

    def resume(self, out: Path) -> bool:
        """Continue exactly where a previous run in `out` stopped; False if there is nothing there."""
        if not (out / "trainer.json").is_file():
            return False
        meta = ckpt.require(ckpt.load_json(out / "trainer.json"), out / "trainer.json", "step", "best",
                            "best_step", "bad_evals", "history", "optimizer", "rng_numpy")
        live = ckpt.require(ckpt.load_tensors(out / "trainer.safetensors"), out / "trainer.safetensors", "rng.torch")
        self._load_state({k[5:]: v for k, v in live.items() if k.startswith("live.")})
        self.best_state = ckpt.load_tensors(out / "model.safetensors")
        ckpt.restore_optimizer(self.opt, live, meta["optimizer"])
        torch.set_rng_state(live["rng.torch"])
        self.rng.bit_generator.state = meta["rng_numpy"]
        self.step, self.best, self.best_step = meta["step"], meta["best"], meta["best_step"]
        self.bad_evals, self.history = meta["bad_evals"], meta["history"]
        log.info("resuming from step %d of %s (best validation %.4f at step %d)", self.step, out, self.best,
                 self.best_step)
        return True

    # -- loop -------------------------------------------------------------------------------
    def meta_step(self) -> torch.Tensor:
        """One outer update; returns the meta-batch's loss as a detached 0-d tensor on the device (read
        as a number only when needed: on a GPU a per-step read waits for the step to finish, and the
        next meta-batch could not be sampled on the CPU while it runs)."""
        c = self.cfg
        k = int(self.rng.integers(c.k_min, c.k_max + 1))
        n_neg = c.n_neg
        if n_neg < 0:
            n_neg = -1 if self.md.side.n_items <= c.max_full_catalog else c.max_full_catalog
        rank, size = world()
        with numpy_single_thread():
            # data-parallel: every rank draws the whole meta-batch and builds its own share of it
            batch = sample_tasks(self.md, self.model.cfg, self.rng, n_tasks=c.meta_batch, k=k, n_query=c.n_query,
                                 n_neg=n_neg, n_inner_neg=c.n_inner_neg, loss=self.meta_cfg.loss,
                                 p_first=c.p_first, neg_power=c.neg_power, recent_fraction=c.recent_fraction,
                                 part=shard(c.meta_batch, rank, size) if size > 1 else None)
        dev = self.item_text.device
        batch = batch.to(device=dev, dtype=self.item_text.dtype)
        self.opt.zero_grad(set_to_none=True)
        if self.tuner is not None:
            self.learner.item_text = self._text_for(batch)
        if self.graphed is not None:
            loss = self.graphed(batch)
        else:
            loss = self.learner.meta_loss(batch)
            if size > 1:  # this rank's share of the mean over the whole meta-batch
                loss = loss * (batch.n_tasks / c.meta_batch)
            loss.backward()
        if size > 1:
            loss = all_reduce_grads(self.learner.outer_parameters(), loss, what=f"meta-step {self.step + 1}")
        if c.clip:
            torch.nn.utils.clip_grad_norm_(self.learner.outer_parameters(), c.clip)
        self.opt.step()
        self.step += 1
        return loss.detach()

    def _text_for(self, batch) -> torch.Tensor:
        """The catalog's text vectors for one meta-step with adapters: the batch's support and query
        items (at most `items_per_step`, in a seeded order) re-encoded with gradients, every other
        item as last re-encoded. The features (content) read the last re-encoding throughout."""
        sup = batch.inner.support.reshape(-1).cpu().numpy()
        pos = batch.outer.items[(batch.outer_labels > 0) & (batch.outer_mask > 0)].cpu().numpy()
        first = np.unique(sup)
        rest = np.setdiff1d(np.unique(pos), first)
        idx = np.concatenate([self.rng.permutation(first), self.rng.permutation(rest)])[:self.tuner.cfg.items_per_step]
        fresh = torch.nn.functional.normalize(self.tuner.embed(idx).to(self.item_text), dim=-1)
        return self.item_text.index_put((torch.from_numpy(idx).to(self.item_text.device),), fresh)

    def refresh_text(self) -> None:
        """Re-encode the whole catalog through the adapters (no gradients) into `item_text` and the
        side's text, then tell `on_text`."""
        vec = self.tuner.encode_all()
        self._set_text(vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12))

    def _set_text(self, vec: np.ndarray) -> None:
        self.md.side.set_text(vec)
        with torch.no_grad():
            self.item_text.copy_(torch.from_numpy(vec).to(self.item_text))
        self.learner.item_text = self.item_text
        if self.on_text is not None:
            self.on_text(vec)

    def fit(self, out: Path | None = None, start_score: float | None = None) -> "MetaTrainer":
        """Meta-train to `cfg.steps` (or early stopping), checkpointing into `out` at each evaluation.

        `start_score`: the current weights' validation score when the caller already has it (it is
        step 0's evaluation, and the same number `evaluate` would return)."""
        c = self.cfg
        writer = None
        if c.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(c.tensorboard)
        bar = progress(total=c.steps, initial=self.step, desc="meta-train", unit="step")
        losses: list[torch.Tensor] = []
        started, first_step = time.perf_counter(), self.step
        if self.tuner is not None:
            if self.step > 0:  # resumed: the adapters are the saved ones, the side's text the frozen encoder's
                self.refresh_text()
            self.best_text = self.md.side.text.copy()
        if self.step == 0 and self.evaluate is not None and not self.history:
            # the initialisation is a candidate too: early stopping may keep it
            self.best = start_score if start_score is not None else self.evaluate(self.model, self.learner)
            self.best_state = self._state()
            self.history.append({"step": 0, "loss": None, "val": self.best})
        while self.step < c.steps and (self.bad_evals < c.patience or not c.keep_best):
            losses.append(self.meta_step())
            bar.update(1)
            if writer:
                writer.add_scalar("train/loss", float(losses[-1]), self.step)
            if self.step % c.eval_every == 0 or self.step == c.steps:
                mean = float(np.mean([float(v) for v in losses]))  # each step's loss as it always was read
                if self.tuner is not None:
                    self.refresh_text()
                score = self.evaluate(self.model, self.learner) if self.evaluate else -mean
                self.history.append({"step": self.step, "loss": mean, "val": score})
                if writer:
                    writer.add_scalar("val/ndcg@10", score, self.step)
                if score > self.best or not c.keep_best:
                    self.best, self.best_step, self.bad_evals = score, self.step, 0
                    self.best_state = self._state()
                    if self.tuner is not None:
                        self.best_text = self.md.side.text.copy()
                else:
                    self.bad_evals += 1
                bar.set_postfix(loss=f"{mean:.4f}", val=f"{score:.4f}", best=f"{self.best:.4f}")
                per_step = (time.perf_counter() - started) / (self.step - first_step)
                log.info("step %d/%d: loss %.4f, validation %.4f (best %.4f at step %d), about %s left at most",
                         self.step, c.steps, mean, score, self.best, self.best_step,
                         _duration(per_step * (c.steps - self.step)))
                losses = []
                if out is not None:
                    if is_main():
                        self.save(out)
                    barrier(f"the checkpoint of step {self.step}")  # no rank reads it before it is whole
        bar.close()
        if writer:
            writer.close()
        if self.graphed is not None:  # hand back the graphs' GPU memory; another fit() captures anew
            self.graphed.reset()
        self._load_state(self.best_state)
        if self.tuner is not None and self.best_text is not None:
            self._set_text(self.best_text)
        return self


def _duration(seconds: float) -> str:
    """"45 s", "12 min", "2.5 h": a remaining time as a person reads it."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
