"""Paired tests of one method against every other, from a benchmark's per_user.csv.

The benchmark report tests only the best method against the runner-up; this answers "does method M
beat each baseline?" for every K, over matched (seed, test user) pairs, with the runner's own
`paired_test`. Writes `paired_<method>.md` beside the CSV.

    python benchmarks/paired.py benchmarks/results/ml-100k-cold-start --method metarec
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import pandas as pd

from metarec.bench.stats import paired_test


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results_dir")
    ap.add_argument("--method", default="metarec")
    ap.add_argument("--metric", default="ndcg@10")
    args = ap.parse_args()
    d = pd.read_csv(Path(args.results_dir) / "per_user.csv")
    d = d[d["split"] == "test"]
    wide = d.pivot_table(index=["shots", "seed", "user_id"], columns="method", values=args.metric)
    lines = [f"| K | other | {args.method} mean | other mean | mean diff | pairs | t-test p | Wilcoxon p |",
             "|---|---|---|---|---|---|---|---|"]
    for k in sorted(wide.index.get_level_values("shots").unique()):
        x = wide.loc[k]
        for other in sorted(c for c in x.columns if c != args.method):
            r = paired_test(x[args.method], x[other])
            lines.append(f"| {k} | {other} | {x[args.method].mean():.4f} | {x[other].mean():.4f} | "
                         f"{r['mean_diff']:+.4f} | {r['n_pairs']} | {r['t_p']:.2g} | {r['wilcoxon_p']:.2g} |")
    table = "\n".join(lines)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    out = Path(args.results_dir) / f"paired_{args.method}.md"
    out.write_text(f"# {args.method} vs every other method (test users, {args.metric})\n\nProduced by:\n\n"
                   f"```\n{command}\n```\n\nPaired over (seed, test user); means are over all pairs.\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
