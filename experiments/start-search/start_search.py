"""What scoring a sample of validation users first saves in metarec's start search, and what it picks.

Before meta-training, `MetaRecMethod` tries about 20 starting feature weights and inner learning
rates on validation users. With 500 or more of them it now scores each candidate on a fixed sample
of `StartSearch.quick_users` (250) and only the `quick_keep` (3) best on all of them. This script fits the
start (no meta-steps) both ways on the seeded synthetic catalog of `catalog_scale.py` (30,000 items,
1,000 validation users; random unit vectors stand in for the text encoder, which does not change the
cost), alternated over `--rounds` rounds in one run, and reports each way's median wall time, how
many validator calls scored every validation user, the start each chose, and that start's NDCG@10
over all validation users (the same in every round: the search is deterministic).
Test users are never scored. Prints a table; writes JSON and Markdown.

    python benchmarks/start_search.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from results_io import publish
from synthetic_data import synthetic_problem

WAYS = ("every user", "sample first")


def fit_start(fd, validator, way: str, quick_users: int, keep: int) -> dict:
    """Fit the start one way; its time, full-validator calls, choice and that choice's full score."""
    from dataclasses import replace

    from metarec.meta.start import StartSearch
    from metarec.methods.metarec import MetaRecMethod

    calls = {"full": 0}

    def counted(score_fn):
        calls["full"] += 1
        return validator(score_fn)

    counted.n_users, counted.sample = validator.n_users, validator.sample
    m = MetaRecMethod(seed=0, train=replace(MetaRecMethod.default_train, steps=0),
                      start=StartSearch(quick_users=quick_users if way == "sample first" else 10 ** 9, quick_keep=keep))
    t0 = time.perf_counter()
    m.fit(fd, counted)
    seconds = time.perf_counter() - t0
    return {"way": way, "seconds": round(seconds, 1), "full_calls": calls["full"],
            "candidates": len(m.prior["val_ndcg@10"]), "chosen": m.prior["chosen"], "inner_lr": m.prior["inner_lr"],
            "val_ndcg@10": round(float(m.model.start_val), 4), "search": m.prior}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=30000)
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--quick-users", type=int, default=250)
    ap.add_argument("--keep", type=int, default=3, help="candidates re-scored on every validation user")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()

    import metarec.methods.metarec as neural
    from metarec.data.protocol import VAL_SAMPLE, make_validator
    from metarec.core.progress import set_progress

    set_progress(False)
    torch.manual_seed(0)
    _, split, fd, text = synthetic_problem(args.items, args.users)
    neural.item_embeddings = lambda items, encoder: text  # the encoder's cost is not what is measured
    validator = make_validator(split, k=5, max_users=VAL_SAMPLE)
    runs = [fit_start(fd, validator, way, args.quick_users, args.keep) for _ in range(args.rounds) for way in WAYS]
    rows = []
    for way in WAYS:
        mine = [r for r in runs if r["way"] == way]
        if any(r["chosen"] != mine[0]["chosen"] or r["val_ndcg@10"] != mine[0]["val_ndcg@10"] for r in mine):
            raise RuntimeError(f"{way}: the rounds chose different starts; the search should be deterministic")
        rows.append({**mine[0], "seconds": round(float(np.median([r["seconds"] for r in mine])), 1),
                     "seconds_per_round": [r["seconds"] for r in mine]})
    base = rows[0]["seconds"]
    lines = ["| start search | seconds (median) | speed-up | validator calls on every user | candidates | chosen start | "
             "inner lr | its validation NDCG@10 (all users) |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['way']} | {r['seconds']} | {base / r['seconds']:.2f}x | {r['full_calls']} | {r['candidates']} | "
              + ", ".join(f"{k} {v}" for k, v in r["chosen"].items()) + f" | {r['inner_lr']} | {r['val_ndcg@10']} |"
              for r in rows]
    publish(args.out, "start_search", "metarec's start search: every validation user vs a sample first (CPU)",
            "\n".join(lines), f"{args.items} items, {validator.n_users} validation users (K = 5), sample of "
            f"{args.quick_users}, the {args.keep} best of it re-scored on every user; each row fits the start with no "
            f"meta-steps (the ease feature is left out above 10,000 items); median of {args.rounds} alternated rounds, "
            "each round's seconds in the JSON.", {"rows": rows},
            items=args.items, val_users=validator.n_users, rounds=args.rounds)


if __name__ == "__main__":
    main()
