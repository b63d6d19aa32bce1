"""Which new arrivals do users pick after the cut on ML-100K, and does ranking them newest first beat
a random order per user?

1. The items first seen after the cut (seed-0 split), their release years and how often each is
   picked after the cut (Spearman correlation).
2. NDCG@10 of the new-arrivals ranking, newest first vs a random order, for validation and test
   users at K = 5, three split seeds.

    python experiments/new-items/release_years.py --data-dir ../shared/data/ml-100k
"""

from __future__ import annotations

import argparse
import datetime

import numpy as np
from scipy.stats import spearmanr


def picks_by_year(d, split, years: np.ndarray) -> None:
    new = np.flatnonzero(split.new_items)
    picks = np.bincount(d.item[d.timestamp >= split.cut_time], minlength=d.n_items)[new]
    y = years[new]
    known = np.isfinite(y)
    rho, p = spearmanr(y[known], picks[known])
    cut = datetime.datetime.fromtimestamp(split.cut_time, datetime.timezone.utc).date()
    print(f"cut {cut}; {len(new)} new arrivals ({known.sum()} with a year), {picks.sum()} picks after the cut")
    for year in sorted(set(y[known].astype(int))):
        sel = y == year
        print(f"  released {year}: {sel.sum()} items, {picks[sel].sum()} picks")
    print(f"Spearman(release year, picks after the cut) = {rho:.3f} (p = {p:.2g})")


def newest_first(d, years: np.ndarray) -> None:
    from metarec.bench.evaluate import new_arrival_metrics
    from metarec.data import SplitConfig, make_split

    known = np.nan_to_num(years, nan=1900.0)
    print("| seed | users | n | year first | random |\n|---|---|---|---|---|")
    for seed in range(3):
        split = make_split(d, SplitConfig(seed=seed))
        for which in ("val", "test"):
            ep = split.episodes(which, 5)
            noise = np.random.default_rng(0).random((len(ep), d.n_items))
            by_year = new_arrival_metrics(known[None] + 1e-3 * noise, ep, split.new_items, np.random.default_rng(1))
            rand = new_arrival_metrics(noise, ep, split.new_items, np.random.default_rng(1))
            n = int(np.isfinite(by_year["ndcg@10"]).sum())
            print(f"| {seed} | {which} | {n} | {np.nanmean(by_year['ndcg@10']):.4f} | {np.nanmean(rand['ndcg@10']):.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/ml-100k")
    a = ap.parse_args()
    from metarec.data import load_dataset, make_split

    d = load_dataset("ml-100k", a.data_dir)
    years = d.items["year"].to_numpy(dtype=float)
    picks_by_year(d, make_split(d), years)
    newest_first(d, years)


if __name__ == "__main__":
    main()
