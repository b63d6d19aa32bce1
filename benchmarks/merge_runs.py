"""Put one method's per-user rows from several benchmark runs side by side, under new names, so that
`paired.py` can test them against each other (the same seeds give the same splits, hence the same
users, in every run of one log).

    python benchmarks/merge_runs.py /tmp/valk-5=metarec:val-k5 /tmp/valk-20=metarec:val-k20 \\
        --method metarec --out /tmp/valk-merged
    python benchmarks/paired.py /tmp/valk-merged --method metarec:val-k5

Writes `per_user.csv` and `runs.json` (each run's command and the name its rows took) in --out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="RUN_DIR=NAME", help="a benchmark --out folder and the name its rows take")
    ap.add_argument("--method", default="metarec", help="the method whose rows are taken from every run")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    parts, runs = [], []
    for spec in args.runs:
        folder, sep, name = spec.rpartition("=")
        if not sep or not folder or not name:
            raise SystemExit(f"{spec!r}: expected RUN_DIR=NAME")
        d = pd.read_csv(Path(folder) / "per_user.csv")
        d = d[d["method"] == args.method]
        if d.empty:
            raise SystemExit(f"{folder}: no rows of method {args.method!r}")
        parts.append(d.assign(method=name))
        info = json.loads((Path(folder) / "run_info.json").read_text())
        runs.append({"name": name, "folder": folder, "command": info.get("command"), "git_sha": info.get("git_sha"),
                     "shots": sorted(int(k) for k in d["shots"].unique())})
    merged = pd.concat(parts, ignore_index=True)
    seeds = {r["name"]: sorted(p["seed"].unique().tolist()) for r, p in zip(runs, parts)}
    if len({tuple(s) for s in seeds.values()}) > 1:
        raise SystemExit(f"the runs have different seeds, so their users differ: {seeds}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    merged.to_csv(out / "per_user.csv", index=False, float_format="%.6g")
    (out / "runs.json").write_text(json.dumps(runs, indent=1) + "\n")
    print(merged.groupby(["method", "shots", "split"]).size().to_string())


if __name__ == "__main__":
    main()
