"""Paired tests of one method against every other, from a benchmark's per_user.parquet.

The benchmark report tests only the best method against the runner-up; this answers "does method M
beat each baseline?" for every K, with the runner's own `paired_test` over test users: a new user
is a test user in several seeds' splits, so each user's difference is averaged over their seeds
first ((seed, user) pairs are not independent; counting each as one makes p-values too small). A
second table splits the difference against the strongest other method (highest mean) by seed:
pairs within one seed share one fitted model, so a difference that lives in one seed is one model's
luck, however many users it covers. The first table also gives, for each pair of methods, the
smallest mean difference that the t-test over users would call significant (p < 0.05) with the same
spread of per-user differences: how far a method is from a significant win, not only whether it has
one. Writes `paired_<method>.md` beside the CSV.

    python benchmarks/paired.py benchmarks/results/ml-100k-cold-start --method metarec
    python benchmarks/paired.py benchmarks/results/ml-100k-ablation --method metarec:default --split val
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path


from metarec.bench.report import read_per_user
from metarec.bench.stats import paired_test


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results_dir")
    ap.add_argument("--method", default="metarec")
    ap.add_argument("--metric", default="ndcg@10")
    ap.add_argument("--split", choices=("test", "val"), default="test",
                    help="test users (default), or validation users (what a choice of default may rest on)")
    args = ap.parse_args()
    who = "test" if args.split == "test" else "validation"
    d = read_per_user(args.results_dir)
    d = d[d["split"] == args.split]
    wide = d.pivot_table(index=["shots", "seed", "user_id"], columns="method", values=args.metric)
    lines = [f"| K | other | {args.method} mean | other mean | mean diff | diff needed for p < 0.05 | pairs | users | "
             "t-test p | Wilcoxon p |", "|---|---|---|---|---|---|---|---|---|---|"]
    shots = [k for k in sorted(wide.index.get_level_values("shots").unique())
             if wide.loc[k][args.method].notna().any()]
    for k in shots:
        x = wide.loc[k].dropna(axis=1, how="all")  # a method not run at this K (merged runs, K = 0) is left out
        for other in sorted(c for c in x.columns if c != args.method):
            r = paired_test(x[args.method], x[other], groups=x.index.get_level_values("user_id"))
            lines.append(f"| {k} | {other} | {x[args.method].mean():.4f} | {x[other].mean():.4f} | "
                         f"{r['mean_diff']:+.4f} | {r['diff_needed']:.4f} | {r['n_pairs']} | "
                         f"{r['n_units']} | {r['t_p']:.2g} | {r['wilcoxon_p']:.2g} |")
    seeds = sorted(wide.index.get_level_values("seed").unique())
    by_seed = ["| K | strongest other | " + " | ".join(f"seed {s}" for s in seeds) + " | seeds ahead / level / behind |",
               "|---|---|" + "---|" * len(seeds) + "---|"]
    for k in shots:
        x = wide.loc[k].dropna(axis=1, how="all")
        if len(x.columns) < 2:
            continue
        other = max((c for c in x.columns if c != args.method), key=lambda c: x[c].mean())
        diff = (x[args.method] - x[other]).groupby(level="seed").mean()
        counts = (int((diff > 0).sum()), int((diff == 0).sum()), int((diff < 0).sum()))
        by_seed.append(f"| {k} | {other} | " + " | ".join(f"{diff[s]:+.4f}" for s in seeds)
                       + " | {} / {} / {} |".format(*counts))
    table = "\n".join(lines)
    seed_table = "\n".join(by_seed)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    stem = "paired_" + re.sub(r"[^A-Za-z0-9_.-]", "_", args.method) + ("" if args.split == "test" else "_val")
    out = Path(args.results_dir) / f"{stem}.md"
    out.write_text(f"# {args.method} vs every other method ({who} users, {args.metric})\n\nProduced by:\n\n"
                   f"```\n{command}\n```\n\nMeans are over all (seed, {who} user) pairs. The tests run over {who} "
                   f"users: a new user is a {who} user in several seeds' splits, so each user's difference is "
                   f"averaged over their seeds first ('users' is how many). 'diff needed for p < 0.05': the "
                   f"smallest mean difference the t-test over users would call significant, given the spread of "
                   f"these per-user differences.\n\n{table}\n\n"
                   f"## By seed, against the strongest other method\n\nMean {args.metric} difference ({args.method} "
                   f"minus the other) over each seed's {who} users; 'level' means exactly 0 (the same ranking for "
                   f"every user, e.g. the same model).\n\n{seed_table}\n")
    print(table)
    print(seed_table)


if __name__ == "__main__":
    main()
