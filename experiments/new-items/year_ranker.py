"""Does ranking ML-100K's new arrivals by release year (newest first) beat a random order, per user?
NDCG@10 of the new-arrivals ranking for validation and test users at K = 5, three split seeds.

    python experiments/new-items/year_ranker.py --data-dir ../shared/data/ml-100k
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/ml-100k")
    a = ap.parse_args()
    from metarec.data import SplitConfig, load_dataset, make_split
    from metarec.bench.evaluate import new_arrival_metrics

    d = load_dataset("ml-100k", a.data_dir)
    years = np.nan_to_num(d.items["year"].to_numpy(dtype=float), nan=1900.0)
    print("| seed | users | n | year first | random |\n|---|---|---|---|---|")
    for seed in range(3):
        split = make_split(d, SplitConfig(seed=seed))
        for which in ("val", "test"):
            ep = split.episodes(which, 5)
            noise = np.random.default_rng(0).random((len(ep), d.n_items))
            by_year = new_arrival_metrics(years[None] + 1e-3 * noise, ep, split.new_items, np.random.default_rng(1))
            rand = new_arrival_metrics(noise, ep, split.new_items, np.random.default_rng(1))
            n = int(np.isfinite(by_year["ndcg@10"]).sum())
            print(f"| {seed} | {which} | {n} | {np.nanmean(by_year['ndcg@10']):.4f} | {np.nanmean(rand['ndcg@10']):.4f} |")


if __name__ == "__main__":
    main()
