"""Time to build the item side's co-occurrence matrix on a large catalog, for this checkout and others.

`ItemSide.build` stores X^T X, cut to each item's strongest COOC_BUDGET // I entries when the whole
product would hold more than COOC_BUDGET (`metarec.models.features.cooccurrence`). On the 100,000-item
synthetic log of catalog_scale.py the whole product holds about 170M entries, so the cut runs on
nearly every row. This times `cooccurrence(x, counts)` with the library's default budget for each
checkout, each in its own long-lived process with its `metarec` first on the path, beside the plain
unbounded product `x.T @ x` in the same process (the floor a bounded build is measured against).
Rounds alternate the processes, and the matrices they build must be identical bit for bit (a digest
of indptr, indices and data), so a faster checkout is only faster.

    git worktree add /tmp/base REV      # the checkout to compare with
    python benchmarks/cooc_build.py --checkout /tmp/base --checkout . --out benchmarks/results
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from results_io import checkout_parser, checkout_rounds, describe, metarec_root, publish


def worker(root: str) -> None:
    """Load the log once, then answer each "round" line on stdin with the seconds of one bounded build,
    one plain product, and a digest of the bounded matrix."""
    from metarec.data.protocol import fit_data
    from metarec.data import SplitConfig, load_dataset, make_split
    from metarec.models import features

    fd = fit_data(make_split(load_dataset("csv", root), SplitConfig(seed=0)))
    x = features._binary(fd.matrix)
    counts = np.asarray(x.sum(axis=0)).ravel().astype(np.float64)
    print(json.dumps({"metarec": metarec_root(), "items": x.shape[1], "users": x.shape[0], "nnz": int(x.nnz),
                      "budget": features.COOC_BUDGET}), flush=True)
    for _ in sys.stdin:
        t0 = time.perf_counter()
        c = features.cooccurrence(x, counts)
        bounded = time.perf_counter() - t0
        digest = hashlib.sha256()
        for a in (c.indptr, c.indices, c.data):
            digest.update(np.ascontiguousarray(a).tobytes())
        nnz = int(c.nnz)
        del c
        t0 = time.perf_counter()
        whole = (x.T @ x).tocsr()
        product = time.perf_counter() - t0
        whole_nnz = int(whole.nnz)
        del whole
        print(json.dumps({"bounded_s": bounded, "product_s": product, "digest": digest.hexdigest(), "nnz": nnz,
                          "whole_nnz": whole_nnz}), flush=True)


def main() -> None:
    args = checkout_parser(__doc__, items=100000, users=50000, rounds=3).parse_args()
    if args.worker:
        worker(args.worker)
        return
    from synthetic_data import synthetic_log

    here = Path(__file__).resolve().parent
    roots = [str(Path(c).resolve()) for c in args.checkout or ["."]]
    with tempfile.TemporaryDirectory() as tmp:
        n_rows = synthetic_log(Path(tmp), args.items, args.users, 0)
        info, runs = checkout_rounds(
            here / "cooc_build.py", roots, [tmp], args.rounds, "built different matrices",
            show=lambda root, g: print(f"{describe(root)}: {g['bounded_s']:.1f} s bounded, "
                                       f"{g['product_s']:.1f} s product", flush=True))
    first = roots[0]
    cols = []
    lines = ["| checkout | bounded build s | plain x.T @ x s | bounded / plain | speed-up vs first, per round min-max |",
             "|---|---|---|---|---|"]
    for r in roots:
        b = [g["bounded_s"] for g in runs[r]]
        p = [g["product_s"] for g in runs[r]]
        ratio = [u / v for u, v in zip(b, p)]
        up = [u / v for u, v in zip((g["bounded_s"] for g in runs[first]), b)]
        cols.append({"checkout": r, "rev": describe(r), "bounded_s": round(float(np.median(b)), 1),
                     "product_s": round(float(np.median(p)), 1), "bounded_per_round": [round(v, 2) for v in b],
                     "product_per_round": [round(v, 2) for v in p], "speedup_per_round": [round(v, 3) for v in up]})
        lines.append(f"| {cols[-1]['rev']} | {cols[-1]['bounded_s']:.1f} | {cols[-1]['product_s']:.1f} | "
                     f"{float(np.median(ratio)):.2f}x | {float(np.median(up)):.2f}x ({min(up):.2f}-{max(up):.2f}x) |")
    last = runs[first][-1]
    i0 = info[first]
    note = (f"{args.items:,} items, {args.users:,} users ({n_rows:,} interactions; {i0['nnz']:,} pre-T in the fit "
            f"matrix). The whole product holds {last['whole_nnz']:,} entries; with the budget "
            f"({i0['budget']:,}) the matrix keeps {last['nnz']:,}. Seconds: the median over {args.rounds} rounds, "
            "the checkouts' processes alternated; every round's bounded matrices were identical across the "
            "checkouts (sha256 of indptr, indices and data).")
    title = f"Building the co-occurrence matrix of a {args.items:,}-item catalog"
    stem = "cooc_build" if args.items == 100000 else f"cooc_build_{args.items}"
    publish(args.out, stem, title, "\n".join(lines), note,
            {"columns": cols, "identical_matrices": True, "rounds": args.rounds, "items": args.items,
             "users": args.users, "interactions": n_rows, "whole_nnz": last["whole_nnz"], "kept_nnz": last["nnz"]})


if __name__ == "__main__":
    main()
