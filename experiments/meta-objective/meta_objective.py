"""Does lowering metarec's training loss raise NDCG@10? Tracked on the training tasks themselves.

metarec's meta-training keeps its starting point (chosen on validation users) in most seeds: the
validation NDCG@10 falls as training goes on. This script separates two explanations:

  drift      warm users' tasks differ from new users (a time-cut split), so what fits one misfits
             the other: then NDCG@10 on the *training* tasks should rise while validation falls;
  objective  the training loss itself (multinomial likelihood of up to 200 later items, here over
             the whole catalog) is not aligned with top-10 ranking: then NDCG@10 falls on the very
             tasks whose loss falls, on a random user split (no time shift) as well.

Every `eval_every` meta-steps it records, for one fixed set of training tasks (warm users' first K
interactions -> their next `n_query`, features without the user's own row, the whole catalog as
candidates): the training loss and NDCG@10 (the protocol's `ranking_metrics`); and the validation
users' NDCG@10 (the runner's validator, K = 5). Training runs a fixed number of steps (no early
stopping) with the default configuration and the validation-chosen start.

    python benchmarks/meta_objective.py --data-dir ../shared/data/ml-100k --out benchmarks/results
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from metarec.data.protocol import fit_data, make_validator
from metarec.bench.report import git_sha
from metarec.core.metrics import ranking_metrics
from metarec.data.loaders import load_dataset
from metarec.data.splits import SplitConfig, make_split
from metarec.meta.losses import task_losses
from metarec.meta.tasks import sample_tasks
from metarec.methods.metarec import MetaRecMethod
from results_io import probe_parser


def train_task_probe(trainer, k: int, n_tasks: int, n_query: int, seed: int, md=None):
    """A function () -> (loss, NDCG@10) on one fixed set of training tasks, whole catalog ranked, as
    the trainer's model and inner loop score them. `md`: draw the tasks from these users instead of
    the trainer's own (e.g. warm users held out of training)."""
    md, cfg = md if md is not None else trainer.md, trainer.model.cfg
    n_i = md.side.n_items
    tasks = sample_tasks(md, cfg, np.random.default_rng([seed, 99]), n_tasks=n_tasks, k=k, n_query=n_query,
                         n_neg=-1, n_inner_neg=trainer.cfg.n_inner_neg, loss="softmax", p_first=1.0, id_dropout=0.0)
    labels, mask = tasks.outer_labels, tasks.outer_mask
    pos = labels[:, :n_query].numpy() > 0
    rows = np.repeat(np.arange(n_tasks), pos.sum(1))
    rel = sp.csr_matrix((np.ones(len(rows)), (rows, tasks.outer.items[:, :n_query].numpy()[pos])), shape=(n_tasks, n_i))

    def probe(scale: float = 1.0) -> tuple[float, float]:
        """(loss, NDCG@10); `scale` multiplies every score before the loss (NDCG@10 does not change)."""
        model, learner = trainer.model, trainer.learner
        params = model.params()
        with torch.no_grad():
            proj = learner.shared_projection(params)
        fast = learner.adapt(tasks.inner, tasks.inner_labels, tasks.inner_mask, steps=trainer.meta_cfg.inner_steps,
                             create_graph=False, params=params, proj=proj)
        with torch.no_grad():
            s = model.score_fn({**params, **fast}, trainer.item_text, tasks.outer, proj)
            loss = float(task_losses("softmax", s * scale, labels, mask).mean())
        # catalog-part scores; the user's other pre-T items are masked there, so the query items get
        # their (identical) query-part scores back and everything else the user had is ranked last
        cat = s[:, n_query:].double().numpy().copy()
        cat[mask[:, n_query:].numpy() <= 0] = -np.inf
        qi = tasks.outer.items[:, :n_query].numpy()
        cat[np.nonzero(pos)[0], qi[pos]] = s[:, :n_query].double().numpy()[pos]
        return loss, float(np.mean(ranking_metrics(cat, rel, (10,))["ndcg@10"]))

    return probe


SCALES = (0.25, 0.5, 1.0, 2.0)


def run(data, mode: str, seed: int, steps: int, eval_every: int, k: int, n_tasks: int, n_query: int) -> list[dict]:
    split = make_split(data, SplitConfig(seed=seed, mode=mode))
    validator = make_validator(split, k=5)
    m = MetaRecMethod(seed=seed, train=replace(MetaRecMethod.default_train, steps=steps, eval_every=eval_every,
                                                  keep_best=False))
    rows: list[dict] = []
    probe = None

    def tracked(score_fn) -> float:
        nonlocal probe
        val = validator(score_fn)
        trainer = getattr(m, "trainer", None)
        if trainer is None:  # the prior / inner-lr search before meta-training
            return val
        probe = probe or train_task_probe(trainer, k, n_tasks, n_query, seed)
        loss, ndcg = probe()
        rows.append({"mode": mode, "seed": seed, "step": trainer.step, "train_loss": loss, "train_ndcg@10": ndcg,
                     "val_ndcg@10": val})
        if trainer.step == 0:  # the start's loss with every score scaled: what the loss asks of the scale alone
            rows[-1]["loss_at_scale"] = {str(c): probe(c)[0] for c in SCALES}
        print(f"{mode:6s} seed {seed} step {trainer.step:4d}  train loss {loss:.3f}  train NDCG@10 {ndcg:.4f}  "
              f"val NDCG@10 {val:.4f}", flush=True)
        return val

    m.fit(fit_data(split), tracked)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("train_loss", "training loss (training tasks)"), ("train_ndcg@10", "NDCG@10 (training tasks)"),
            ("val_ndcg@10", "NDCG@10 (validation users)")]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), dpi=110)
    for ax, (key, title) in zip(axes, keys):
        for mode in sorted({r["mode"] for r in rows}):
            steps = sorted({r["step"] for r in rows if r["mode"] == mode})
            ys = [np.mean([r[key] for r in rows if r["mode"] == mode and r["step"] == s]) for s in steps]
            ax.plot(steps, ys, marker="o", ms=3, label=f"{mode} split")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("meta-step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("mean over seeds: the loss falls, NDCG@10 falls with it", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = probe_parser(__doc__, seeds=3, steps=200, eval_every=20)
    ap.add_argument("--modes", default="time,random")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--n-query", type=int, default=200)
    a = ap.parse_args()
    data = load_dataset(a.dataset, a.data_dir)
    rows = [r for mode in a.modes.split(",") for seed in range(a.seeds)
            for r in run(data, mode, seed, a.steps, a.eval_every, a.k, a.tasks, a.n_query)]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = "python benchmarks/meta_objective.py " + shlex.join(sys.argv[1:])
    sha = git_sha()
    (out / "meta_objective.json").write_text(json.dumps({"command": cmd, "rows": rows}, indent=1))
    plot(rows, out / "meta_objective.png")
    lines = ["# Training loss vs NDCG@10 during meta-training", "", "Produced by:", "", "```", cmd, "```", "",
             f"Default metarec configuration, {a.steps} meta-steps without early stopping, {a.seeds} seeds per split. "
             f"Training tasks: {a.tasks} fixed warm-user tasks (first {a.k} interactions -> next {a.n_query}, the "
             "user's own row left out of the features, whole catalog ranked). Validation: the runner's validator "
             "(validation users, K = 5). Values are means over seeds; step 0 is the validation-chosen start. "
             f"Figure: `meta_objective.png`. git {sha}.", "",
             "| split | step | training loss | NDCG@10 training tasks | NDCG@10 validation users |", "|---|---|---|---|---|"]
    for mode in a.modes.split(","):
        for s in sorted({r["step"] for r in rows if r["mode"] == mode}):
            sel = [r for r in rows if r["mode"] == mode and r["step"] == s]
            lines.append(f"| {mode} | {s} | {np.mean([r['train_loss'] for r in sel]):.3f} | "
                         f"{np.mean([r['train_ndcg@10'] for r in sel]):.4f} | {np.mean([r['val_ndcg@10'] for r in sel]):.4f} |")
    lines += ["", "The start's training loss with every score multiplied by c (same order, so the same NDCG@10): the "
              "multi-positive softmax over the catalog prefers flatter scores than the start's, so lowering it "
              "can flatten the ranking rather than improve it (`meta_controls.md`, learned temperature).", "",
              "| split | " + " | ".join(f"c = {c}" for c in SCALES) + " |", "|---|" + "---|" * len(SCALES)]
    for mode in a.modes.split(","):
        sel = [r["loss_at_scale"] for r in rows if r["mode"] == mode and "loss_at_scale" in r]
        lines.append(f"| {mode} | " + " | ".join(f"{np.mean([x[str(c)] for x in sel]):.3f}" for c in SCALES) + " |")
    (out / "meta_objective.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'meta_objective.md'}")


if __name__ == "__main__":
    main()
