"""Which outer loss, and is it the loss or the time shift? softmax vs approx-NDCG@10, held-out warm users.

`meta_objective.md` found that lowering the default outer loss (the multinomial softmax over a
user's next 200 items) lowers NDCG@10 on the very tasks it trains on, on a time and on a random
split. This script asks whether an outer loss aligned with NDCG@10 fixes that, and whether what it
learns then carries over to new users. From the same validation-chosen start it trains a fixed
number of meta-steps (no early stopping) with each outer loss and records every `eval_every` steps:

  train tasks      NDCG@10 of 200 fixed training tasks (warm users' first 5 interactions -> their
                   next 200, whole catalog ranked; meta_objective's probe)
  held-out warm    the same for warm users kept out of meta-training (a seeded fifth of them): do
                   the gains generalise to other users of the same period?
  validation       the runner's validator: new users after the cut (time split) or random users
                   (random split), K = 5

Meta-training draws its tasks from the other four fifths of the warm users only, so the start (the
prior and inner learning rate searched on validation users with all warm users' features) is the
same for both losses. If approx-NDCG raises the training tasks and the held-out warm users but not
the validation users of the time split, while it raises all three on the random split, the loss was
one fault and the time shift between warm and new users is the other.

    python benchmarks/outer_loss.py --data-dir ../shared/data/ml-100k --out benchmarks/results
    python benchmarks/outer_loss.py --dataset csv --data-dir /tmp/synthetic-implicit --tag synthetic-implicit
    python benchmarks/outer_loss.py --dataset csv --data-dir /tmp/synthetic-sparse --tag synthetic-sparse --seeds 2
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from metarec.data.protocol import fit_data, make_validator
from metarec.bench.report import git_sha
from metarec.data.loaders import load_dataset
from metarec.data.splits import SplitConfig, make_split
from metarec.meta.tasks import MetaData
from metarec.meta.trainer import MetaTrainer
from metarec.methods.metarec import MetaRecMethod
from results_io import probe_parser

sys.path.insert(0, str(Path(__file__).parent))
from meta_objective import train_task_probe  # noqa: E402  (the same probe as meta_objective.md)

LOSSES = ("softmax", "approx_ndcg")
SERIES = ("train", "held_out", "val")


def subset(md: MetaData, idx: np.ndarray) -> MetaData:
    """The warm users `idx` of `md` (side information unchanged)."""
    return replace(md, sequences=[md.sequences[i] for i in idx], user_rows=md.user_rows[idx], profiles=md.profiles[idx],
                   recency=None if md.recency is None else md.recency[idx],
                   recent_rows=None if md.recent_rows is None else md.recent_rows[idx], _lens=None)


def run(data, mode: str, seed: int, steps: int, eval_every: int, lr: float) -> list[dict]:
    split = make_split(data, SplitConfig(seed=seed, mode=mode))
    validator = make_validator(split, k=5)
    m = MetaRecMethod(seed=seed, train=replace(MetaRecMethod.default_train, steps=0))
    m.fit(fit_data(split), validator)  # the validation-chosen start, no meta-steps
    start = {k: v.clone() for k, v in m.rec.model.state_dict().items()}
    md = m.trainer.md
    perm = np.random.default_rng([seed, 7]).permutation(len(md.sequences))
    cut = int(0.8 * len(perm))
    train_md, held_md = subset(md, np.sort(perm[:cut])), subset(md, np.sort(perm[cut:]))
    rows = []
    for loss in LOSSES:
        m.rec.model.load_state_dict(start)
        meta = replace(m.meta, outer_loss=None if loss == "softmax" else loss)
        train = replace(m.train, steps=steps, eval_every=eval_every, keep_best=False, lr=lr)
        trainer = MetaTrainer(m.rec.model, m.rec.item_text, train_md, meta, train)
        probe = train_task_probe(trainer, 5, 200, 200, seed)
        held = train_task_probe(trainer, 5, 150, 200, seed, md=held_md)
        m.rec.learner = trainer.learner

        def evaluate(*_, loss=loss, trainer=trainer, probe=probe, held=held) -> float:
            val = validator(m.score)
            rows.append({"mode": mode, "seed": seed, "loss": loss, "step": trainer.step, "train": probe()[1],
                         "held_out": held()[1], "val": val})
            return val

        trainer.evaluate = evaluate
        trainer.fit()
        r = [x for x in rows if x["loss"] == loss and x["mode"] == mode]
        print(f"{mode:6s} seed {seed} {loss:11s} " + "  ".join(
            f"{s} {r[-1][s] - r[0][s]:+.4f}" for s in SERIES) + f"  (from {r[0]['val']:.4f} validation)", flush=True)
    return rows


def main() -> None:
    ap = probe_parser(__doc__, seeds=3, steps=150, eval_every=25)
    ap.add_argument("--lr", type=float, default=1e-3, help="outer Adam rate (the default's 3e-4 barely moves in 150 steps)")
    ap.add_argument("--tag", default="", help="suffix of the report's name (outer_loss_TAG.md) for another dataset")
    a = ap.parse_args()
    data = load_dataset(a.dataset, a.data_dir)
    rows = [r for mode in ("time", "random") for seed in range(a.seeds)
            for r in run(data, mode, seed, a.steps, a.eval_every, a.lr)]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = "python benchmarks/outer_loss.py " + shlex.join(sys.argv[1:])
    sha = git_sha()
    name = "outer_loss" + (f"_{a.tag}" if a.tag else "")
    (out / f"{name}.json").write_text(json.dumps({"command": cmd, "git": sha, "rows": rows}, indent=1))
    steps = sorted({r["step"] for r in rows})

    def delta(mode: str, loss: str, series: str, step: int) -> tuple[float, int]:
        """Mean over seeds of the change since step 0, and in how many seeds it is > 0."""
        d = [r[series] - b[series] for r in rows for b in rows
             if r["mode"] == b["mode"] == mode and r["loss"] == b["loss"] == loss and r["seed"] == b["seed"]
             and r["step"] == step and b["step"] == 0]
        return float(np.mean(d)), sum(x > 0 for x in d)

    lines = [f"# Outer loss: softmax vs approx-NDCG@10, and held-out warm users ({a.dataset})", "", "Produced by:", "", "```", cmd,
             "```", "",
             f"git {sha}. {a.seeds} seeds per split; {a.steps} meta-steps from the validation-chosen start, outer Adam "
             f"lr {a.lr}, no early stopping, tasks from four fifths of the warm users. Each cell: the mean over seeds "
             "of NDCG@10 at that step minus at step 0, and (in brackets) the number of seeds in which it rose. "
             "train = 200 fixed training tasks; held-out = 150 tasks of the warm users kept out; validation = "
             "the runner's validator (K = 5). Test users are never scored.", ""]
    for mode in ("time", "random"):
        start = np.mean([r["val"] for r in rows if r["mode"] == mode and r["step"] == 0 and r["loss"] == LOSSES[0]])
        lines += [f"## {mode} split (validation NDCG@10 at the start: {start:.4f}, mean of seeds)", "",
                  "| step | " + " | ".join(f"{loss} {s}" for loss in LOSSES for s in SERIES) + " |",
                  "|---|" + "---|" * (len(LOSSES) * len(SERIES))]
        for st in steps[1:]:
            cells = []
            for loss in LOSSES:
                for s in SERIES:
                    d, up = delta(mode, loss, s, st)
                    cells.append(f"{d:+.4f} ({up})")
            lines.append(f"| {st} | " + " | ".join(cells) + " |")
        lines.append("")
    (out / f"{name}.md").write_text("\n".join(lines))
    print(f"wrote {out / name}.md")


if __name__ == "__main__":
    main()
