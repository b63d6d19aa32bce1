"""Candidate retrieval (FAISS) against exact full-catalog scoring on large synthetic catalogs.

For each catalog size: a seeded synthetic log (`synthetic_data.large_log`: clustered text vectors
standing in for the encoder's, power-law popularity), a model meta-trained on its warm users for a
few steps (the library's trainer and default inner loop; no start search, which scores the whole
catalog dozens of times), then for each test user at K = 5 the library path `rec.adapt(...)
.recommend(10)` twice, alternated: every item through the network, and through candidates
(models.retrieval) re-scored exactly. Reported: recall@10 of the candidate path against the exact
top 10, and adapt + top-10 latency p50 / p99 for one user on each path, the index build time and
the peak memory.

    python benchmarks/ann_recall.py --items 100000,1000000 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import pandas as pd
import torch

from results_io import publish
from synthetic_data import large_log


def fitted(n_items: int, n_users: int, steps: int, seed: int):
    """(a MetaRecommender meta-trained `steps` steps on a synthetic log, its split, seconds to fit)."""
    from metarec.data import SplitConfig, make_split
    from metarec.data.interactions import build
    from metarec.data.protocol import fit_data
    from metarec.meta.recommender import MetaRecommender, RecommenderInfo
    from metarec.meta.train import DEFAULT_META, meta_data
    from metarec.meta.trainer import MetaTrainer, TrainConfig
    from metarec.models.features import FEATURES, ItemSide
    from metarec.models.scoring import ScoringConfig, ScoringModel

    log, text, _ = large_log(n_items, n_users, seed)
    log["rating"] = 1.0
    data = build("synthetic", log, pd.DataFrame({"item_id": np.arange(n_items)}), explicit=False)
    split = make_split(data, SplitConfig(seed=seed))
    fd = fit_data(split)
    t0 = time.perf_counter()
    side = ItemSide.build(text, fd.matrix, fd.recent)
    md = meta_data(fd, side, None, profiles=np.zeros((len(fd.users), text.shape[1]), np.float32))
    # the default network less "ease", which a fit leaves out at these catalog sizes
    model = ScoringModel(ScoringConfig(features=FEATURES), text.shape[1], n_items,
                         generator=torch.Generator().manual_seed(seed))
    train = TrainConfig(steps=steps, meta_batch=16, eval_every=steps, keep_best=False, seed=seed)
    trainer = MetaTrainer(model, torch.from_numpy(side.text), md, DEFAULT_META, train)
    trainer.fit()
    rec = MetaRecommender(model, DEFAULT_META, side, RecommenderInfo(explicit=False, n_inner_neg=train.n_inner_neg),
                          seed=seed)
    return rec, split, time.perf_counter() - t0


def measure(rec, split, n_test: int, shots: int) -> dict:
    """Both paths for up to `n_test` test users at K = `shots`, alternated per user."""
    from metarec.meta.retrieve import Retriever
    from metarec.models.retrieval import RetrievalConfig

    ep = split.episodes("test", shots)
    paths = {"exact": Retriever(rec, RetrievalConfig(mode="off")), "candidates": Retriever(rec, RetrievalConfig(mode="on"))}
    t0 = time.perf_counter()
    index = paths["candidates"].index()
    build_s = time.perf_counter() - t0
    ms, recall = {name: [] for name in paths}, []
    for u in range(min(n_test, len(ep.support_items))):
        tops = {}
        for name, retriever in paths.items():
            rec.retriever = retriever
            t = time.perf_counter()
            tops[name], _ = rec.adapt(ep.support_items[u].tolist()).recommend(10)
            ms[name].append((time.perf_counter() - t) * 1e3)
        recall.append(len(set(tops["exact"]) & set(tops["candidates"])) / len(tops["exact"]))
    pct = lambda a, q: float(np.percentile(a, q))  # noqa: E731
    return {"users": len(recall), "recall@10": float(np.mean(recall)), "recall_min": float(np.min(recall)),
            "index_build_s": build_s, "nlist": int(index.index.nlist),
            "ms": {k: {"p50": pct(v, 50), "p99": pct(v, 99), "mean": float(np.mean(v))} for k, v in ms.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", default="100000,1000000")
    ap.add_argument("--users", type=int, default=50000)
    ap.add_argument("--steps", type=int, default=40, help="meta-training steps of each model")
    ap.add_argument("--test-users", type=int, default=200)
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args()
    rows = []
    for n in (int(x) for x in a.items.split(",")):
        rec, split, fit_s = fitted(n, a.users, a.steps, a.seed)
        r = measure(rec, split, a.test_users, a.shots)
        r.update(items=n, fit_s=fit_s, warm_items=int((rec.side.counts > 0).sum()),
                 candidates=rec.retriever.cfg.candidates, nprobe=rec.retriever.cfg.nprobe)
        rows.append(r)
        print(json.dumps(r), flush=True)
        del rec, split
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    head = ("| items | warm items | test users | recall@10 (mean / min) | exact p50 / p99 ms | candidates p50 / p99 ms "
            "| speed-up (p50) | index build s | lists / probed | candidates |\n|" + "---|" * 10)
    body = [head]
    for r in rows:
        e, c = r["ms"]["exact"], r["ms"]["candidates"]
        body.append(f"| {r['items']:,} | {r['warm_items']:,} | {r['users']} | {r['recall@10']:.3f} / "
                    f"{r['recall_min']:.1f} | {e['p50']:.1f} / {e['p99']:.1f} | {c['p50']:.1f} / {c['p99']:.1f} | "
                    f"{e['p50'] / c['p50']:.1f}x | {r['index_build_s']:.1f} | {r['nlist']} / {r['nprobe']} | "
                    f"{r['candidates']} |")
    note = (f"Synthetic logs of {a.users:,} users (`synthetic_data.large_log`), a model meta-trained {a.steps} steps on "
            f"each; test users at K = {a.shots}, one at a time through `rec.adapt(support).recommend(10)`, the two "
            f"paths alternated per user. Peak resident memory {peak:.2f} GB.")
    publish(a.out, "ann_recall", "Candidate retrieval vs exact full-catalog scoring", "\n".join(body), note,
            {"rows": rows, "peak_rss_gb": peak, "users": a.users, "steps": a.steps, "shots": a.shots})


if __name__ == "__main__":
    main()
