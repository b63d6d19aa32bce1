"""Full-catalog scoring in item blocks vs in one forward (MetaRecommender.BLOCK_ROWS), on the CPU.

Scoring every validation user against the whole catalog builds a [users x items x hidden] block
that outgrows the CPU's caches; `MetaRecommender.catalog_block` cuts the catalog into blocks of about
`BLOCK_ROWS` (user, item) rows. One validator call (every validation user, at most 1,000, at K = 5, 3
inner steps, inputs cached so only the network runs) is timed both ways, alternated in one run, on
ML-100K and on the seeded synthetic catalog of `catalog_scale.py` (30,000 items). The scores are
compared (largest difference, and whether every user's top 10 is the same list). Prints a table;
writes JSON and Markdown.

    python benchmarks/catalog_blocks.py --data-dir ../shared/data/ml-100k --out benchmarks/results
"""

from __future__ import annotations

import time

import numpy as np

from results_io import publish
from validation_cache import recording, two_catalogs, validation_problem


def timings(name: str, side, split, rounds: int) -> dict:
    rec, validator = validation_problem(side, split)
    ways = {"one forward": 0, "blocks": rec.BLOCK_ROWS}
    scores: dict[str, list[np.ndarray]] = {k: [] for k in ways}
    times: dict[str, list[float]] = {k: [] for k in ways}

    try:
        with rec.input_cache(1 << 31):
            validator(recording(rec, []))  # fills the cache (not timed)
            for _ in range(rounds):
                for kind, block_rows in ways.items():
                    scores[kind].clear()
                    rec.BLOCK_ROWS = block_rows
                    t0 = time.perf_counter()
                    validator(recording(rec, scores[kind]))
                    times[kind].append(time.perf_counter() - t0)
    finally:
        rec.BLOCK_ROWS = ways["blocks"]
    from metarec.core.metrics import top_k

    whole, blocks = (np.concatenate(scores[k]) for k in ways)
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {"data": name, "items": int(side.n_items), "val_users": len(whole),
            "items_per_block": rec.catalog_block(min(len(whole), rec.users_per_forward())),
            "one_forward_s": round(med["one forward"], 3), "blocks_s": round(med["blocks"], 3),
            "speedup": round(med["one forward"] / med["blocks"], 2),
            "max_abs_diff": float(np.abs(whole - blocks).max()), "same_top10": bool((top_k(whole, 10) == top_k(blocks, 10)).all())}


def main() -> None:
    args, problems = two_catalogs(__doc__)
    rows = [timings(name, side, split, args.rounds) for name, side, split in problems]
    lines = ["| data | items | validation users | items per block | one forward (s) | blocks (s) | speed-up | "
             "max abs score diff | same top 10 |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['data']} | {r['items']} | {r['val_users']} | {r['items_per_block']} | {r['one_forward_s']} | "
              f"{r['blocks_s']} | {r['speedup']}x | {r['max_abs_diff']:.1e} | {'yes' if r['same_top10'] else 'NO'} |"
              for r in rows]
    publish(args.out, "catalog_blocks", "One validator call: the catalog scored in one forward vs in item blocks (CPU)",
            "\n".join(lines), f"Median of {args.rounds} alternated calls, scoring inputs cached; each call adapts and "
            "scores every validation user (at most 1,000) at K = 5 over the whole catalog with 3 inner steps. "
            "'items per block' is for a full forward of users (score_batch's default users per forward). ML-100K with "
            "the ease feature, the synthetic catalog without it.", {"rows": rows}, rounds=args.rounds)


if __name__ == "__main__":
    main()
