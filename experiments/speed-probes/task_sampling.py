"""Time to sample one meta-batch of training tasks on a large catalog, for this checkout and others.

On the 30,000-item synthetic catalog of catalog_scale.py, building a meta-batch's inputs (every
catalog item's side features for 32 warm users, each with their own row taken out of the counts)
took longer than the meta-step that consumes it. This measures `sample_tasks` as the trainer calls
it (TrainConfig's defaults: 32 users, K drawn from 1..10, 500 outer negatives, 20 inner negatives per
support item) for each checkout, each in its own long-lived process with its `metarec` first on the
path. Rounds alternate the processes; every round gives each the same seeds, and the batches they
return must be identical bit for bit (a digest of every tensor), so a faster checkout is only faster.
Item text: seeded random unit vectors (the cost does not depend on their values; no encoder runs).

    git worktree add /tmp/base REV      # the checkout to compare with
    python benchmarks/task_sampling.py --checkout /tmp/base --checkout . --out benchmarks/results
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from results_io import checkout_parser, checkout_rounds, describe, metarec_root, publish


def worker(root: str, calls: int) -> None:
    """Build the catalog side once, then answer each "round R" line on stdin with the milliseconds of
    `calls` sample_tasks calls drawn from seed (0, R) and a digest of the batches they returned."""
    import hashlib
    import time

    from metarec.data.protocol import fit_data
    from metarec.core.threads import numpy_single_thread
    from metarec.data import SplitConfig, load_dataset, make_split
    from metarec.meta.learners import MetaConfig
    from metarec.meta.tasks import sample_tasks
    from metarec.meta.trainer import TrainConfig
    from metarec.meta.train import meta_data
    from metarec.models.features import FEATURES, ItemSide
    from metarec.models.scoring import ScoringConfig

    fd = fit_data(make_split(load_dataset("csv", root), SplitConfig(seed=0)))
    text = np.random.default_rng(0).normal(size=(fd.n_items, 384)).astype(np.float32)
    side = ItemSide.build(text, fd.matrix, fd.recent)
    md = meta_data(fd, side, None)
    cfg = ScoringConfig(features=FEATURES)  # the default less "ease", which the fit leaves out at this size
    c, loss = TrainConfig(), MetaConfig().loss
    print(json.dumps({"metarec": metarec_root(), "items": side.n_items,
                      "cooc_nnz": int(side.cooc.nnz)}), flush=True)
    for line in sys.stdin:
        rng = np.random.default_rng([0, int(line.split()[1])])
        digest, ms = hashlib.sha256(), []
        for _ in range(calls):
            k = int(rng.integers(c.k_min, c.k_max + 1))  # as MetaTrainer.meta_step draws it
            t0 = time.perf_counter()
            with numpy_single_thread():
                b = sample_tasks(md, cfg, rng, n_tasks=c.meta_batch, k=k, n_query=c.n_query, n_neg=c.n_neg,
                                 n_inner_neg=c.n_inner_neg, loss=loss, p_first=c.p_first, neg_power=c.neg_power,
                                 recent_fraction=c.recent_fraction)
            ms.append((time.perf_counter() - t0) * 1e3)
            for x in (b.inner, b.outer):
                for f in x._TENSORS:
                    digest.update(getattr(x, f).contiguous().numpy().tobytes())
            for t in (b.inner_labels, b.inner_mask, b.outer_labels, b.outer_mask):
                digest.update(t.numpy().tobytes())
        print(json.dumps({"ms": ms, "digest": digest.hexdigest()}), flush=True)


def main() -> None:
    ap = checkout_parser(__doc__, items=30000, users=20000, rounds=7)
    ap.add_argument("--calls", type=int, default=20, help="sample_tasks calls per checkout in each round")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.calls)
        return
    from synthetic_data import synthetic_log

    here = Path(__file__).resolve().parent
    roots = [str(Path(c).resolve()) for c in args.checkout or ["."]]
    with tempfile.TemporaryDirectory() as tmp:
        n_rows = synthetic_log(Path(tmp), args.items, args.users, 0)
        info, runs = checkout_rounds(here / "task_sampling.py", roots, [tmp, "--calls", str(args.calls)],
                                     args.rounds, "sampled different batches")
    per_round = {r: [float(np.median(g["ms"])) for g in runs[r]] for r in roots}
    cols = [{"checkout": r, "rev": describe(r), "ms": round(float(np.median(per_round[r])), 1),
             "ms_per_round": [round(v, 1) for v in per_round[r]]} for r in roots]
    first, last = roots[0], roots[-1]
    ratios = [a / b for a, b in zip(per_round[first], per_round[last])]
    lines = ["| checkout | ms per meta-batch | speed-up vs first | per round, min-max |", "|---|---|---|---|"]
    for c, r in zip(cols, roots):
        rr = [a / b for a, b in zip(per_round[first], per_round[r])]
        lines.append(f"| {c['rev']} | {c['ms']:.1f} | {cols[0]['ms'] / c['ms']:.2f}x | "
                     f"{min(rr):.2f}-{max(rr):.2f}x |")
    note = (f"{args.items} items, {args.users} users ({n_rows} interactions; {info[first]['cooc_nnz']:,} stored "
            f"co-occurrences), the trainer's default meta-batch. 'ms per meta-batch': the median over "
            f"{args.rounds} rounds of each round's median of {args.calls} calls, the checkouts' processes "
            "alternated; every round's batches were identical across the checkouts (sha256 of every tensor).")
    title = f"Sampling a meta-batch on a {args.items:,}-item catalog"
    publish(args.out, "task_sampling", title, "\n".join(lines), note,
            {"columns": cols, "speedup_per_round": [round(v, 3) for v in ratios], "identical_batches": True,
             "rounds": args.rounds, "calls": args.calls})


if __name__ == "__main__":
    main()
