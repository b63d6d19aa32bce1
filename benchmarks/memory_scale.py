"""Peak memory and time of `metarec meta-train` on a log of a million users.

A seeded synthetic implicit log (`synthetic_data.large_log`: 200 item clusters, power-law
popularity) with short item titles that name each item's cluster topic is written as the generic
`csv` dataset; then the command a user would type, `metarec meta-train -d csv ...`, runs in a child
process (encoder pass over every title, the protocol's split, the item side with its bounded
co-occurrence, the start search, meta-training, the checkpoint), and its peak resident memory and
wall time are recorded, with the size of the co-occurrence the item side stored.

    python benchmarks/memory_scale.py --users 1000000 --items 100000 --history-scale 9 --steps 100 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from results_io import publish
from synthetic_data import STYLES, TOPICS, large_log


def write_log(root: Path, n_items: int, n_users: int, scale: float, seed: int) -> dict:
    """interactions.csv and items.csv under root; returns what was written."""
    t0 = time.perf_counter()
    log, _, item_c = large_log(n_items, n_users, seed, history_scale=scale)
    log = log.drop_duplicates(["user_id", "item_id"])  # what the loader keeps (first per pair)
    rng = np.random.default_rng(seed)
    titles = [f"{STYLES[s]} {TOPICS[c % len(TOPICS)]} {c // len(TOPICS)} {i}"
              for i, (c, s) in enumerate(zip(item_c, rng.integers(0, len(STYLES), n_items)))]
    log.to_csv(root / "interactions.csv", index=False)
    pd.DataFrame({"item_id": np.arange(n_items), "title": titles}).to_csv(root / "items.csv", index=False)
    return {"interactions": len(log), "users": int(log["user_id"].nunique()), "items": n_items,
            "items_seen": int(log["item_id"].nunique()), "write_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--history-scale", type=float, default=9.0, help="9: about 20 interactions per user")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "log").mkdir()
        data = write_log(root / "log", a.items, a.users, a.history_scale, a.seed)
        print(json.dumps(data), flush=True)
        cmd = [sys.executable, "-m", "metarec.cli", "--no-progress", "meta-train", "-d", "csv", "--data-dir",
               str(root / "log"), "--out", str(root / "model"), "--steps", str(a.steps)]
        t0 = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if run.returncode:
            raise SystemExit(f"meta-train failed ({run.returncode}):\n{run.stderr[-4000:]}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # KB -> GB
        from metarec.meta.checkpoint import load_tensors

        side = load_tensors(root / "model" / "side.safetensors")
        cooc_nnz = int(side["cooc.data"].shape[0])
        cooc_mb = sum(side[k].numel() * side[k].element_size() for k in ("cooc.data", "cooc.indices", "cooc.indptr")) / 1e6
    row = {**data, "peak_rss_gb": peak, "meta_train_s": wall, "steps": a.steps, "cooc_nnz": cooc_nnz,
           "cooc_mb": cooc_mb, "log_tail": run.stderr[-3000:]}
    table = ("| users | items (seen) | interactions | meta-train wall s | peak RSS GB | co-occurrences stored (MB) |\n"
             "|---|---|---|---|---|---|\n"
             f"| {data['users']:,} | {data['items']:,} ({data['items_seen']:,}) | {data['interactions']:,} | "
             f"{wall:.0f} | {peak:.2f} | {cooc_nnz:,} ({cooc_mb:.0f}) |")
    note = (f"`metarec meta-train -d csv` with --steps {a.steps} (every other setting its default: the encoder over "
            "every title, the start search and early stopping on validation users) in a child process; peak RSS is "
            "the child's (getrusage), the log's generation not included. The co-occurrence keeps each item's "
            "strongest entries within `models.features.COOC_BUDGET` (2^26).")
    publish(a.out, "memory_scale", "meta-train on a million-user log: memory and time", table, note, row)


if __name__ == "__main__":
    main()
