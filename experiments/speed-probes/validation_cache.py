"""What keeping the validation users' scoring inputs saves while fitting (MetaRecommender.input_cache).

A fit scores the same validation users dozens of times (21 tries of the start search, then early
stopping) while only the weights change. One validator call (every validation user at K = 5 over the
whole catalog, 3 inner steps) is timed with the inputs rebuilt each time and with them taken from the
cache, alternated in one run, on ML-100K and on the seeded synthetic catalog of
`catalog_scale.py` (30,000 items; random text vectors stand in for the encoder, which does not
change the cost). The scores are checked equal. Prints a table; writes JSON and Markdown.

    python benchmarks/validation_cache.py --data-dir ../shared/data/ml-100k --out benchmarks/results
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from meta_speed import speed_problem
from results_io import publish
from synthetic_data import synthetic_problem


def validation_problem(side, split):
    """(a seeded fresh recommender over `side` with 3 inner steps, the fit's validator at K = 5 over
    at most VAL_SAMPLE validation users of `split`): what one validator call while fitting scores."""
    from metarec.data.protocol import VAL_SAMPLE, make_validator
    from metarec.meta.learners import MetaConfig
    from metarec.meta.recommender import MetaRecommender, RecommenderInfo
    from metarec.models.features import FEATURES
    from metarec.models.scoring import ScoringConfig, ScoringModel

    features = FEATURES + (("ease",) if side.ease_p is not None else ())
    model = ScoringModel(ScoringConfig(features=features), side.text.shape[1], side.n_items,
                         generator=torch.Generator().manual_seed(0))
    rec = MetaRecommender(model, MetaConfig(inner_steps=3, inner_lr=0.1), side, RecommenderInfo(), seed=0)
    return rec, make_validator(split, k=5, max_users=VAL_SAMPLE)


def recording(rec, kept: list):
    """A validator's score function: `rec`'s scores of each batch, also appended to `kept`."""
    def fn(batch):
        s = rec.score_batch(batch.support_items, batch.support_ratings)
        kept.append(s)
        return s
    return fn


def timings(name: str, side, split, rounds: int) -> dict:
    from metarec.data.protocol import VAL_SAMPLE

    rec, validator = validation_problem(side, split)
    scores: dict[str, list[np.ndarray]] = {"rebuilt": [], "cached": []}

    times: dict[str, list[float]] = {"rebuilt": [], "cached": []}
    with rec.input_cache(1 << 31) as cache:
        validator(recording(rec, []))  # fills the cache (not timed)
        for _ in range(rounds):
            for kind in times:
                scores[kind].clear()
                t0 = time.perf_counter()
                if kind == "cached":
                    validator(recording(rec, scores[kind]))
                else:
                    saved, cache._cache = cache._cache, None  # the same call with the cache off
                    try:
                        validator(recording(rec, scores[kind]))
                    finally:
                        cache._cache = saved
                times[kind].append(time.perf_counter() - t0)
        same = all(np.array_equal(a, b) for a, b in zip(scores["rebuilt"], scores["cached"]))
    n_val = len(split.episodes("val", 5))
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {"data": name, "items": int(side.n_items), "val_users": min(n_val, VAL_SAMPLE),
            "rebuilt_s": round(med["rebuilt"], 3), "cached_s": round(med["cached"], 3),
            "speedup": round(med["rebuilt"] / med["cached"], 2), "same_scores": bool(same)}


def two_catalogs(doc: str):
    """(parsed arguments, [(name, item side, split)] for ML-100K with the ease feature and for the
    seeded synthetic catalog without it): the validator-call benchmarks' command line and problems."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/ml-100k")
    ap.add_argument("--items", type=int, default=30000)
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()

    from metarec.core.progress import set_progress
    from metarec.models.features import ItemSide

    set_progress(False)
    torch.manual_seed(0)
    _, split, side, _, _, _ = speed_problem(args.data_dir, torch.device("cpu"))
    problems = [("ml-100k", side, split)]
    _, split, fd, text = synthetic_problem(args.items, args.users)
    problems.append((f"synthetic {args.items} items", ItemSide.build(text, fd.matrix, fd.recent), split))
    return args, problems


def main() -> None:
    args, problems = two_catalogs(__doc__)
    rows = [timings(name, side, split, args.rounds) for name, side, split in problems]
    lines = ["| data | items | validation users | inputs rebuilt (s) | cached (s) | speed-up | same scores |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['data']} | {r['items']} | {r['val_users']} | {r['rebuilt_s']} | {r['cached_s']} | {r['speedup']}x | "
              f"{'yes' if r['same_scores'] else 'NO'} |" for r in rows]
    publish(args.out, "validation_cache", "One validator call while fitting: scoring inputs rebuilt vs cached (CPU)",
            "\n".join(lines), f"Median of {args.rounds} alternated calls; each scores every validation user (at most "
            "1,000) at K = 5 over the whole catalog with 3 inner steps. ML-100K with the ease feature, the synthetic "
            "catalog without it (the fit leaves it out above 10,000 items).", {"rows": rows}, rounds=args.rounds)


if __name__ == "__main__":
    main()
