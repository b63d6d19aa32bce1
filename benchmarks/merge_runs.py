"""Put methods' per-user rows from several benchmark runs side by side, each renamed METHOD:TAG, so
that `paired.py` can test them against each other (the same seeds give the same splits, hence the
same users, in every run of one log).

    python benchmarks/merge_runs.py /tmp/valk-5=val-k5 /tmp/valk-20=val-k20 --methods metarec --out /tmp/merged
    python benchmarks/paired.py /tmp/merged --method metarec:val-k5

Writes `per_user.parquet` and `runs.json` (each run's command and tag) in --out. `--splits test,val`
leaves out the warm-user rows, which `paired.py` does not read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from metarec.bench.report import PER_USER, read_per_user, write_per_user


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="RUN_DIR=TAG", help="a benchmark --out folder and the tag its rows take")
    ap.add_argument("--methods", default="metarec", help="comma-separated: the methods taken from every run")
    ap.add_argument("--splits", default="test,val,warm", help="comma-separated: the user splits kept")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    parts, runs = [], []
    for spec in args.runs:
        folder, sep, tag = spec.rpartition("=")
        if not sep or not folder or not tag:
            raise SystemExit(f"{spec!r}: expected RUN_DIR=TAG")
        d = read_per_user(folder)
        d = d[d["split"].isin(splits)]
        for m in methods:
            rows = d[d["method"] == m]
            if rows.empty:
                raise SystemExit(f"{folder}: no rows of method {m!r}")
            parts.append(rows.assign(method=f"{m}:{tag}"))
        info = json.loads((Path(folder) / "run_info.json").read_text())
        runs.append({"tag": tag, "folder": folder, "command": info.get("command"), "git_sha": info.get("git_sha"),
                     "shots": sorted(int(k) for k in d["shots"].unique())})
    merged = pd.concat(parts, ignore_index=True)
    seeds = {m: sorted(p["seed"].unique().tolist()) for m, p in zip((p["method"].iloc[0] for p in parts), parts)}
    if len({tuple(s) for s in seeds.values()}) > 1:
        raise SystemExit(f"the runs have different seeds, so their users differ: {seeds}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_per_user(merged, out / PER_USER)
    (out / "runs.json").write_text(json.dumps(runs, indent=1) + "\n")
    print(merged.groupby(["method", "shots", "split"]).size().to_string())


if __name__ == "__main__":
    main()
