"""Summarise k_ablation.py runs: per log and K, test NDCG@10 of each variant, and paired differences
(over test users, each user's difference averaged over their seeds) for the three questions:
K conditioning (start + rate) vs one start, the K-dependent rate vs a fixed one, and meta-training
vs pooled training (same network); plus metarec against the best classical method.

    python experiments/k-conditioning/summarize.py /tmp/k-ml-100k /tmp/k-synthetic-text ... \
        --out experiments/k-conditioning/summary.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from metarec.bench.report import read_per_user
from metarec.bench.stats import paired_test

OURS = ("metarec", "metarec:fixed-rate", "metarec:one-start", "pooled-finetune", "pooled-finetune:one-start")
QUESTIONS = (("K start + rate vs one start", "metarec", "metarec:one-start"),
             ("K rate vs fixed rate", "metarec", "metarec:fixed-rate"),
             ("meta-trained vs pooled", "metarec", "pooled-finetune"),
             ("meta vs pooled, one start", "metarec:one-start", "pooled-finetune:one-start"))


def paired(pu, a: str, b: str, k: int) -> dict:
    x = pu[(pu.method == a) & (pu.shots == k)].sort_values(["seed", "user_id"])
    y = pu[(pu.method == b) & (pu.shots == k)].sort_values(["seed", "user_id"])
    assert np.array_equal(x[["seed", "user_id"]].to_numpy(), y[["seed", "user_id"]].to_numpy())
    return paired_test(x["ndcg@10"].to_numpy(), y["ndcg@10"].to_numpy(), groups=x["user_id"].to_numpy())


def cell(t: dict) -> str:
    star = " *" if t["t_p"] < 0.05 else ""
    return f"{t['mean_diff']:+.4f} (p {t['t_p']:.2g}){star}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    lines = ["# K conditioning: summary", "", "Test NDCG@10, mean over seeds; paired differences over test users "
             "(t-test p; * = p < 0.05). 'best classical': the highest mean among the non-metarec methods run.", ""]
    payload = {}
    for run in args.runs:
        pu = read_per_user(run)
        pu = pu[pu.split == "test"]
        name = json.loads((Path(run) / "run_info.json").read_text()).get("dataset", Path(run).name)
        means = pu.groupby(["method", "shots", "seed"])["ndcg@10"].mean().groupby(["method", "shots"]).mean()
        ks = sorted(pu.shots.unique())
        lines += [f"## {Path(run).name} ({name})", "",
                  "| K | " + " | ".join(OURS) + " | best classical |", "|---" * (len(OURS) + 2) + "|"]
        for k in ks:
            classical = means[[m for m in means.index.get_level_values(0).unique() if m not in OURS]].xs(k, level=1)
            best = classical.idxmax()
            lines.append(f"| {k} | " + " | ".join(f"{means[(m, k)]:.4f}" for m in OURS)
                         + f" | {best} {classical[best]:.4f} |")
        lines += ["", "| K | " + " | ".join(q for q, _, _ in QUESTIONS) + " | metarec vs best classical |",
                  "|---" * (len(QUESTIONS) + 2) + "|"]
        payload[Path(run).name] = {}
        for k in ks:
            classical = means[[m for m in means.index.get_level_values(0).unique() if m not in OURS]].xs(k, level=1)
            tests = [paired(pu, a, b, k) for _, a, b in QUESTIONS] + [paired(pu, "metarec", classical.idxmax(), k)]
            lines.append(f"| {k} | " + " | ".join(cell(t) for t in tests) + " |")
            payload[Path(run).name][int(k)] = {q: {"diff": t["mean_diff"], "p": t["t_p"]}
                                               for q, t in zip([q for q, _, _ in QUESTIONS] + ["vs best classical"], tests)}
        lines.append("")
    Path(args.out).write_text("\n".join(lines))
    Path(args.out).with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
