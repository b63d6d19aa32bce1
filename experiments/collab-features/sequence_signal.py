"""Is there signal in the order of warm users' histories that metarec does not use? Validation users only.

metarec's collaborative features (item-kNN cosines, EASE weights) are symmetric co-occurrences: they
ignore which item came first. A new user's query is what they do *after* their first K items, so a
directional feature could add to them: for items i and j, how many warm users interacted with j
within the `--window` interactions after i (pre-T histories only), normalised like the cosine
(divided by sqrt(count_i * count_j)), and summed over the support set.

This probe does not change metarec. Per seed it fits the shipped default (as `metarec benchmark`
does, validation users choosing everything) and scores the validation users at K = 5 and 10. It
then adds the directional score post hoc, as z-scores per user, `zs(metarec) + a * zs(next)` for
several a. The inner loop does not see the new score, so this is a lower bound on what a
`next`-style feature in the network could do, with the same caveat as any choice made on these
users. Test users are never scored. Prints a table; writes JSON and Markdown.

    python benchmarks/sequence_signal.py --data-dir ../shared/data/ml-100k --out benchmarks/results
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import scipy.sparse as sp

from results_io import command_line, write_result

WEIGHTS = (0.0, 0.25, 0.5, 1.0)


def transitions(sequences, n_items: int, window: int) -> sp.csr_matrix:
    """[I, I]: entry (i, j) counts the warm users in whose history j follows i within `window` steps."""
    rows, cols = [], []
    for items, _ in sequences:
        for a in range(len(items) - 1):
            nxt = items[a + 1:a + 1 + window]
            rows.append(np.full(len(nxt), items[a]))
            cols.append(nxt)
    r, c = np.concatenate(rows), np.concatenate(cols)
    m = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n_items, n_items))
    m.sum_duplicates()  # a user with j twice after i counts twice (rare: an item once per history)
    return m


def zscore(s: np.ndarray) -> np.ndarray:
    s = s - s.mean(axis=1, keepdims=True)
    return s / (s.std(axis=1, keepdims=True) + 1e-12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/ml-100k")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()

    from metarec.data.protocol import fit_data, make_validator, metrics_for, support_batch
    from metarec.core.progress import set_progress
    from metarec.data import SplitConfig, load_dataset, make_split
    from metarec.methods.metarec import MetaRecMethod

    set_progress(False)
    data = load_dataset("ml-100k", args.data_dir)
    shots = (5, 10)
    cells: dict[tuple[int, str], list[float]] = {}
    for seed in range(args.seeds):
        split = make_split(data, SplitConfig(seed=seed))
        fd = fit_data(split)
        method = MetaRecMethod(seed=seed).fit(fd, make_validator(split, k=5))
        counts = np.asarray(fd.matrix.sum(axis=0)).ravel()
        inv = sp.diags(1.0 / np.sqrt(np.maximum(counts, 1.0)))
        nxt = (inv @ transitions(fd.sequences, data.n_items, args.window) @ inv).tocsr()
        for k in shots:
            ep = split.episodes("val", k)
            base = method.score(support_batch(split, ep)).astype(np.float64)
            seq = np.vstack([np.asarray(nxt[row].sum(axis=0)).ravel() for row in ep.support_items])
            r = np.repeat(np.arange(len(ep)), k)
            for name, s in [("next alone", seq)] + [(f"a = {a}", zscore(base) + a * zscore(seq)) for a in WEIGHTS]:
                s = s.copy()
                s[r, ep.support_items.ravel()] = -np.inf
                cells.setdefault((k, name), []).append(float(np.nanmean(metrics_for(s, ep, ks=(10,))["ndcg@10"])))
    names = ["next alone"] + [f"a = {a}" for a in WEIGHTS]
    lines = ["| K | score | " + " | ".join(f"seed {s}" for s in range(args.seeds)) + " | mean | seeds above a = 0 |",
             "|---|---|" + "---|" * args.seeds + "---|---|"]
    for k in shots:
        ref = cells[(k, "a = 0.0")]
        for name in names:
            v = cells[(k, name)]
            above = "" if name in ("a = 0.0", "next alone") else f"{sum(x > y for x, y in zip(v, ref))} of {len(v)}"
            lines.append(f"| {k} | {'metarec (shipped)' if name == 'a = 0.0' else name} | "
                         + " | ".join(f"{x:.4f}" for x in v) + f" | {np.mean(v):.4f} | {above} |")
    table = "\n".join(lines)
    print(table)
    meta = {"command": command_line(), "python": platform.python_version(), "window": args.window,
            "weights": WEIGHTS, "seeds": args.seeds}
    write_result(args.out, "sequence_signal", {"meta": meta, "cells": {f"{k}|{n}": v for (k, n), v in cells.items()}},
                 "Order in warm users' histories: signal beyond metarec? (ML-100K, validation users)",
                 meta["command"],
                 f"Validation NDCG@10 per seed (the protocol's time split; K = support size). 'metarec (shipped)': "
                 f"the default model as the benchmark fits it. 'next alone': the directional score by itself "
                 f"(window {args.window}). 'a = x': z-scores per user, metarec + x * next, added after the fit "
                 f"(the inner loop never sees it). Test users are not scored.\n\n{table}")


if __name__ == "__main__":
    main()
