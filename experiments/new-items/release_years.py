"""Which new arrivals do users pick after the cut on ML-100K? The items first seen after the cut,
their release years, and how often each is picked after the cut (Spearman correlation).

    python experiments/new-items/release_years.py --data-dir ../shared/data/ml-100k
"""

from __future__ import annotations

import argparse
import datetime

import numpy as np
from scipy.stats import spearmanr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/ml-100k")
    a = ap.parse_args()
    from metarec.data import load_dataset, make_split

    d = load_dataset("ml-100k", a.data_dir)
    split = make_split(d)
    new = np.flatnonzero(split.new_items)
    picks = np.bincount(d.item[d.timestamp >= split.cut_time], minlength=d.n_items)[new]
    years = d.items["year"].to_numpy(dtype=float)[new]
    known = np.isfinite(years)
    rho, p = spearmanr(years[known], picks[known])
    cut = datetime.datetime.fromtimestamp(split.cut_time, datetime.timezone.utc).date()
    print(f"cut {cut}; {len(new)} new arrivals ({known.sum()} with a year), {picks.sum()} picks after the cut")
    for y in sorted(set(years[known].astype(int))):
        sel = years == y
        print(f"  released {y}: {sel.sum()} items, {picks[sel].sum()} picks")
    print(f"Spearman(release year, picks after the cut) = {rho:.3f} (p = {p:.2g})")


if __name__ == "__main__":
    main()
