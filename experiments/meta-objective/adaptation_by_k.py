"""What metarec's per-user inner steps are worth at each shot count K (validation users only).

The shipped model adapts every new user with the same inner loop (steps and learning rate chosen on
validation users at K = 5). This script fits the default model per seed and re-scores validation
users at K = 1, 3, 5 and 10 with other adaptation budgets (no inner steps, the chosen rate halved or
doubled, more steps), without retraining: does one budget suit every K? Test users are never read.

    python benchmarks/adaptation_by_k.py --data-dir ../shared/data/ml-100k --out benchmarks/results
    python benchmarks/adaptation_by_k.py --dataset csv --data-dir /tmp/synthetic-implicit --tag synthetic-implicit
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
from metarec.methods.metarec import MetaRecMethod
from results_io import probe_parser

SHOTS = (1, 3, 5, 10)
# (inner steps, multiple of the chosen inner learning rate); (3, 1.0) is what the default ships
BUDGETS = ((0, 1.0), (3, 0.5), (3, 1.0), (3, 2.0), (6, 1.0), (10, 1.0))
SHIPPED = (3, 1.0)


def run(data, seed: int) -> list[dict]:
    split = make_split(data, SplitConfig(seed=seed))
    m = MetaRecMethod(seed=seed)
    m.fit(fit_data(split), make_validator(split, k=5))
    chosen = m.meta
    if chosen.inner_steps != SHIPPED[0]:
        raise SystemExit(f"the default's inner steps changed to {chosen.inner_steps}: update SHIPPED")
    rows = []
    for k in SHOTS:
        val = make_validator(split, k=k)
        for steps, mult in BUDGETS:
            meta = replace(chosen, inner_steps=steps, inner_lr=chosen.inner_lr * mult)
            m.rec.set_inner_loop(meta)
            rows.append({"seed": seed, "k": k, "steps": steps, "lr_mult": mult, "inner_lr": meta.inner_lr,
                         "val_ndcg@10": val(m.score)})
        print(f"seed {seed} K={k:2d} " + " ".join(f"{r['steps']}@x{r['lr_mult']}={r['val_ndcg@10']:.4f}"
                                                  for r in rows[-len(BUDGETS):]), flush=True)
    m.rec.set_inner_loop(chosen)
    return rows


def main() -> None:
    ap = probe_parser(__doc__, seeds=5)
    ap.add_argument("--tag", default=None, help="file name suffix (default: the dataset name)")
    a = ap.parse_args()
    data = load_dataset(a.dataset, a.data_dir)
    rows = [r for seed in range(a.seeds) for r in run(data, seed)]
    tag = a.tag or a.dataset
    cmd = "python benchmarks/adaptation_by_k.py " + shlex.join(sys.argv[1:])
    sha = git_sha()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"adaptation_by_k_{tag}.json").write_text(json.dumps({"command": cmd, "git": sha, "rows": rows}, indent=1))

    def cell(k: int, b: tuple[int, float]) -> list[float]:
        return [r["val_ndcg@10"] for r in rows if r["k"] == k and (r["steps"], r["lr_mult"]) == b]

    names = [f"{s} steps x{m:g} lr" if s else "no inner steps" for s, m in BUDGETS]
    lines = [f"# Adaptation budget by shot count ({tag}, validation users)", "", "Produced by:", "", "```", cmd, "```",
             "", f"git {sha}. Mean validation NDCG@10 over {a.seeds} seeds of the default model (meta-trained with "
             "early stopping as shipped), re-scored with each inner-loop budget; 'x2 lr' is twice the rate the "
             "start search chose. The shipped budget is 3 steps x1; the other columns are its difference to it. "
             "The last column counts the seeds in which the best other budget beats the shipped one.", "",
             "| K | " + " | ".join(names) + " | best other beats shipped |", "|---|" + "---|" * (len(BUDGETS) + 1)]
    for k in SHOTS:
        ship = np.array(cell(k, SHIPPED))
        if not len(ship):
            continue
        parts = []
        best_b, best_m = None, -np.inf
        for b in BUDGETS:
            v = np.array(cell(k, b))
            if b == SHIPPED:
                parts.append(f"{v.mean():.4f}")
            else:
                parts.append(f"{v.mean() - ship.mean():+.4f}")
                if v.mean() > best_m:
                    best_b, best_m = b, v.mean()
        wins = int((np.array(cell(k, best_b)) > ship).sum())
        lines.append(f"| {k} | " + " | ".join(parts) + f" | {wins} of {len(ship)} |")
    table = "\n".join(lines) + "\n"
    (out / f"adaptation_by_k_{tag}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
