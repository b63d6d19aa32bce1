"""Top-10 lists for many users: `MetaRecommender.recommend_many` (batched) vs a loop of
`adapt(...).ranked(10)`, the same users and model, alternated in one run.

Every ML-100K user gets K = 1..10 interactions (their first K in time order, K cycling with the user
index, so users of every K are mixed), the default network (untrained: the cost does not depend on
the weights) with 5 inner steps, and the whole catalog ranked. Also checks that both give every user
the same list. Prints a table; writes JSON and Markdown.

    python benchmarks/batch_recommend.py --data-dir ../shared/data/ml-100k --out benchmarks/results
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from meta_speed import speed_problem
from results_io import publish


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/ml-100k")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--vectors", default=None, help=".npz with `items` and `profiles` instead of encoding the texts")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()

    from metarec.core.progress import set_progress
    from metarec.meta.learners import MetaConfig
    from metarec.meta.recommender import MetaRecommender, RecommenderInfo

    set_progress(False)
    torch.manual_seed(0)
    data, _, side, _, _, model = speed_problem(args.data_dir, torch.device("cpu"), args.vectors)
    rec = MetaRecommender(model, MetaConfig(inner_steps=5), side, RecommenderInfo(), item_ids=data.item_ids.tolist())
    order = np.lexsort((data.item_ids[data.item], data.timestamp, data.user))
    log = pd.DataFrame({"user_id": data.user_ids[data.user[order]], "item_id": data.item_ids[data.item[order]],
                        "rating": data.rating[order]})
    nth = log.groupby("user_id", sort=False).cumcount().to_numpy()
    k_of = {u: 1 + n % 10 for n, u in enumerate(pd.unique(log["user_id"]))}
    log = log[nth < log["user_id"].map(k_of).to_numpy()].reset_index(drop=True)
    users = {u: (g["item_id"].tolist(), g["rating"].tolist()) for u, g in log.groupby("user_id", sort=False)}

    def loop() -> pd.DataFrame:
        rows = [{"user_id": u, **r} for u, (items, rs) in users.items()
                for r in rec.adapt(items, ratings=rs).ranked(10)]
        return pd.DataFrame(rows)

    times: dict[str, list[float]] = {"loop": [], "batch": []}
    results = {}
    for _ in range(args.rounds):
        for name, fn in (("loop", loop), ("batch", lambda: rec.recommend_many(log, 10))):
            t0 = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
    a, b = results["loop"], results["batch"]
    same_ids = (a["user_id"].tolist() == b["user_id"].tolist() and a["item_id"].tolist() == b["item_id"].tolist())
    max_diff = float(np.max(np.abs(a["score"].to_numpy() - b["score"].to_numpy())))
    med = {k: float(np.median(v)) for k, v in times.items()}
    n_u = len(users)
    row = {"users": n_u, "items": int(side.n_items), "loop_s": round(med["loop"], 3), "batch_s": round(med["batch"], 3),
           "loop_users_per_s": round(n_u / med["loop"], 1), "batch_users_per_s": round(n_u / med["batch"], 1),
           "speedup": round(med["loop"] / med["batch"], 2), "same_lists": bool(same_ids),
           "max_abs_score_diff": max_diff}
    table = "\n".join([
        "| users (K = 1..10) | items | loop s | batch s | loop users/s | batch users/s | speed-up | same top-10 lists | max score diff |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {n_u} | {row['items']} | {row['loop_s']} | {row['batch_s']} | {row['loop_users_per_s']} | "
        f"{row['batch_users_per_s']} | {row['speedup']}x | {'yes' if same_ids else 'NO'} | {max_diff:.1e} |"])
    publish(args.out, "batch_recommend", "Top-10 lists for many users: batched vs one at a time (CPU)", table,
            f"Median of {args.rounds} alternated rounds of the whole set of users; each user adapted (5 inner "
            "steps) from their first K interactions and the whole catalog ranked.", {"row": row},
            inner_steps=5, rounds=args.rounds)


if __name__ == "__main__":
    main()
