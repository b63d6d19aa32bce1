"""Is it the training tasks or the network? Two controls on metarec's meta-training.

`meta_objective.md` shows validation NDCG@10 falling as meta-training goes on, on a random split as
well as on the time split. This script starts every run from the same validation-chosen start and
trains a fixed number of meta-steps (no early stopping) three ways, reading validation users'
NDCG@10 (K = 5, the runner's validator) every `eval_every` steps:

  warm tasks        the default: tasks from warm users' pre-T histories
  pseudo-new tasks  tasks that look like new users in time: a second protocol cut inside the pre-T
                    data; tasks are the users arriving after it, with every side feature (co-occurrence,
                    popularity, trend) computed from the interactions before it
  loss maximised    a control: the default tasks with the sign of the outer loss flipped
  positives vs negatives only
                    the default tasks with another outer loss: each query positive competes with
                    the sampled negatives only, log(1 + sum_neg exp(s_n - s_p)), not with the user's
                    other positives as in the multi-positive softmax, which pushes a top-ranked
                    positive down once its probability exceeds 1 / (number of positives)
  learned temperature
                    the default loss on exp(theta) * scores, theta an extra outer parameter (Adam,
                    lr 3e-2): the multi-positive softmax over the catalog prefers flat scores (the
                    start's scores times 0.25 have a lower training loss than 200 meta-steps reach,
                    with the same ranking: meta_objective.md), and without a free temperature the
                    network can only flatten its ranking to get them
  inner rates only  MetaSGD with the network frozen at the start: only the per-parameter inner
                    learning rates (from the chosen rate, Adam lr 1e-3) and the learned temperature
                    train; is it how far a user's few interactions should move the head that the
                    tasks teach wrongly?
  pseudo-new, approx-NDCG
                    pseudo-new tasks under the outer loss aligned with NDCG@10 (`outer_loss.md`
                    found it lifts held-out warm users but not new users on the time split): do
                    tasks shaped like new users in time carry that lift over to them?

A second table gives the start's validation NDCG@10 with 0 or 3 inner steps at several inner
learning rates (no meta-training): what the per-user gradient steps themselves are worth.

If pseudo-new tasks help where warm tasks hurt, the time shift is the cause. If maximising the loss
moves validation about as much as minimising it, what the network learns from these tasks carries
no top-10 signal for new users. If the positives-vs-negatives loss helps, the softmax's flattening
of the top among a user's many positives is the cause. If the learned temperature stops the fall,
the loss's preference for a score scale, not for an order, is what the network was learning.

    python benchmarks/meta_controls.py --data-dir ../shared/data/ml-100k --out benchmarks/results
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from metarec.data.protocol import fit_data, make_validator
from metarec.bench.report import git_sha
from metarec.data.loaders import load_dataset
from metarec.data.splits import SplitConfig, make_split
from metarec.meta.losses import task_losses
from metarec.meta.tasks import MetaData
from metarec.meta.trainer import MetaTrainer
from metarec.encoders import profile_vectors
from metarec.methods.metarec import MetaRecMethod
from metarec.models.features import ItemSide
from results_io import probe_parser

VARIANTS = ("warm tasks", "pseudo-new tasks", "loss maximised", "positives vs negatives", "learned temperature",
            "inner rates only", "pseudo-new, approx-NDCG")
ADAPTATION = ((0, None), (3, 0.1), (3, 0.5), (3, 2.0))  # (inner steps, inner lr) for the adaptation table


def positives_vs_negatives(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """float [T]: mean over each task's positives p of softplus(logsumexp_negatives(s) - s_p)."""
    pos = (labels > 0).to(scores.dtype) * mask
    neg = (labels <= 0) & (mask > 0)
    lse = torch.logsumexp(scores.masked_fill(~neg, float("-inf")), dim=1, keepdim=True)
    return (F.softplus(lse - scores) * pos).sum(1) / pos.sum(1).clamp(min=1.0)


def pseudo_new_tasks(data, split, side: ItemSide, md_warm: MetaData, ease_lambda: float | None) -> MetaData:
    """Tasks from the users who arrive after a protocol cut inside the pre-T data, with side features
    from the interactions before that cut only (the protocol applied again to the fitting side; the
    ease feature, when the model has one, with the fit's own ridge)."""
    m = split.train_mask
    pre = dataclasses.replace(data, user=data.user[m], item=data.item[m], rating=data.rating[m],
                              timestamp=data.timestamp[m])
    inner = make_split(pre, SplitConfig(seed=split.config.seed))
    fd = fit_data(inner)
    users = inner.new_users
    return MetaData(side=ItemSide.build(side.text, fd.matrix, fd.recent, ease_lambda=ease_lambda),
                    sequences=[inner.user_history(int(u)) for u in users],
                    user_rows=sp.csr_matrix((len(users), data.n_items), dtype=np.float32),  # absent before the cut
                    profiles=profile_vectors(data.users.iloc[users], None),
                    rating_max=md_warm.rating_max, explicit=md_warm.explicit)


def run(data, seed: int, steps: int, eval_every: int, variants=VARIANTS, outer_lr: float | None = None) -> list[dict]:
    split = make_split(data, SplitConfig(seed=seed))
    validator = make_validator(split, k=5)
    fd = fit_data(split)
    m = MetaRecMethod(seed=seed, train=replace(MetaRecMethod.default_train, steps=0))
    m.fit(fd, validator)  # the validation-chosen start (prior and inner learning rate), no meta-steps
    start = {k: v.clone() for k, v in m.rec.model.state_dict().items()}
    md = m.trainer.md
    lam = m.rec.side.ease_lambda  # the ridge the fit chose for its ease feature (None without it)
    tasks = {"warm tasks": md, "pseudo-new tasks": pseudo_new_tasks(data, split, m.rec.side, md, lam),
             "loss maximised": md, "positives vs negatives": md, "learned temperature": md, "inner rates only": md}
    tasks["pseudo-new, approx-NDCG"] = tasks["pseudo-new tasks"]
    adaptation = {"variant": "adaptation", "seed": seed, "chosen_inner_lr": m.meta.inner_lr}
    for steps_, lr in ADAPTATION:
        meta = replace(m.meta, inner_steps=steps_, inner_lr=lr if lr is not None else m.meta.inner_lr)
        m.rec.set_inner_loop(meta)
        adaptation[f"{steps_}@{lr}"] = validator(m.score)
    m.rec.meta = m.meta
    rows = []
    for variant in variants:
        m.rec.model.load_state_dict(start)
        train = replace(m.train, steps=steps, eval_every=eval_every, keep_best=False, lr=outer_lr or m.train.lr)
        meta = replace(m.meta, algorithm="metasgd") if variant == "inner rates only" else m.meta
        if variant == "pseudo-new, approx-NDCG":
            meta = replace(meta, outer_loss="approx_ndcg")
        trainer = MetaTrainer(m.rec.model, m.rec.item_text, tasks[variant], meta, train)
        m.rec.meta = meta
        if variant == "loss maximised":
            minimise = trainer.learner.meta_loss
            trainer.learner.meta_loss = lambda batch: -minimise(batch)
        if variant == "positives vs negatives":
            learner = trainer.learner
            learner.meta_loss = lambda b: positives_vs_negatives(learner.query_scores(b), b.outer_labels,
                                                                 b.outer_mask).mean()
        log_t = None
        if variant in ("learned temperature", "inner rates only"):
            learner, log_t = trainer.learner, torch.nn.Parameter(torch.zeros(()))
            if variant == "inner rates only":  # the network stays at the start (lr 0: its gradients are still zeroed each step)
                trainer.opt = torch.optim.Adam([{"params": list(m.rec.model.parameters()), "lr": 0.0},
                                                {"params": list(learner.lrs.parameters()), "lr": 1e-3}])
            trainer.opt.add_param_group({"params": [log_t], "lr": 3e-2})
            learner.meta_loss = lambda b: task_losses(m.meta.loss, learner.query_scores(b) * log_t.exp(),
                                                      b.outer_labels, b.outer_mask).mean()
        m.rec.learner = trainer.learner
        trainer.evaluate = lambda *_: validator(m.score)
        trainer.fit()
        for h in trainer.history:
            rows.append({"variant": variant, "seed": seed, "step": h["step"], "val_ndcg@10": h["val"],
                         "tasks_users": len(tasks[variant].sequences)})
        temp = "" if log_t is None else f"  (temperature {float(log_t.detach().exp()):.3f})"
        print(f"seed {seed} {variant:18s} " + " ".join(f"{h['val']:.4f}" for h in trainer.history) + temp, flush=True)
        if log_t is not None:
            rows[-1]["temperature"] = float(log_t.detach().exp())
        if trainer.learner.lrs is not None:
            rows[-1]["mean_inner_lr"] = {n: float(v.detach().mean()) for n, v in trainer.learner.lrs.as_dict().items()}
    m.rec.meta = m.meta
    return rows + [adaptation]


def main() -> None:
    ap = probe_parser(__doc__, seeds=3, steps=150, eval_every=10)
    a = ap.parse_args()
    data = load_dataset(a.dataset, a.data_dir)
    rows = [r for seed in range(a.seeds) for r in run(data, seed, a.steps, a.eval_every)]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = "python benchmarks/meta_controls.py " + shlex.join(sys.argv[1:])
    sha = git_sha()
    (out / "meta_controls.json").write_text(json.dumps({"command": cmd, "git": sha, "rows": rows}, indent=1))
    adapt_rows = [r for r in rows if r["variant"] == "adaptation"]
    rows = [r for r in rows if r["variant"] != "adaptation"]
    steps = sorted({r["step"] for r in rows})
    users = {v: sorted({r["tasks_users"] for r in rows if r["variant"] == v}) for v in VARIANTS}

    def delta(v: str, s: int) -> float:
        """Mean over seeds of validation NDCG@10 at step s minus at step 0 (the shared start)."""
        at = {r["seed"]: r["val_ndcg@10"] for r in rows if r["variant"] == v and r["step"] == s}
        base = {r["seed"]: r["val_ndcg@10"] for r in rows if r["variant"] == v and r["step"] == 0}
        return float(np.mean([at[k] - base[k] for k in at]))

    start = np.mean([r["val_ndcg@10"] for r in rows if r["variant"] == VARIANTS[0] and r["step"] == 0])
    lines = ["# Meta-training controls: which tasks, which direction", "", "Produced by:", "", "```", cmd, "```", "",
             f"Default metarec configuration from the validation-chosen start (mean validation NDCG@10 {start:.4f}), "
             f"{a.steps} meta-steps without early stopping, {a.seeds} seeds. Each cell is the mean over seeds of "
             "validation NDCG@10 (K = 5) at that step minus at step 0. Task users per seed: "
             + "; ".join(f"{v}: {', '.join(map(str, u))}" for v, u in users.items()) + f". git {sha}.", "",
             "| step | " + " | ".join(VARIANTS) + " |", "|---|" + "---|" * len(VARIANTS)]
    lines += [f"| {s} | " + " | ".join(f"{delta(v, s):+.4f}" for v in VARIANTS) + " |" for s in steps]
    for v in ("learned temperature", "inner rates only"):
        temps = [f"seed {r['seed']}: {r['temperature']:.3f}" for r in rows if r["variant"] == v and "temperature" in r]
        if temps:
            lines += ["", f"{v}: the learned temperature (the factor on the scores in the outer loss) at step {a.steps}: "
                      + "; ".join(temps) + "."]
    lrs = [r for r in rows if "mean_inner_lr" in r]
    if lrs:
        lines += ["", f"inner rates only: mean learned inner learning rate per parameter at step {a.steps} "
                  "(each started at the seed's chosen rate): "
                  + "; ".join(f"seed {r['seed']}: " + ", ".join(f"{n} {x:.3f}" for n, x in r["mean_inner_lr"].items())
                              for r in lrs) + "."]
    cols = [f"{st}@{lr}" for st, lr in ADAPTATION]
    lines += ["", "## What the per-user gradient steps are worth (the start, no meta-training)", "",
              "Validation NDCG@10 (K = 5) of the validation-chosen start scored with each inner loop.", "",
              "| seed | chosen inner lr | " + " | ".join("no inner steps" if lr is None else f"{st} steps at lr {lr}"
                                                    for st, lr in ADAPTATION) + " |",
              "|---|---|" + "---|" * len(ADAPTATION)]
    lines += [f"| {r['seed']} | {r['chosen_inner_lr']} | " + " | ".join(f"{r[c]:.4f}" for c in cols) + " |"
              for r in adapt_rows]
    (out / "meta_controls.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'meta_controls.md'}")


if __name__ == "__main__":
    main()
