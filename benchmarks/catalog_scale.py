"""metarec on a catalog 18x larger than ML-100K's: does the default run end to end, how long, how much memory.

A seeded synthetic log (power-law item popularity, users drawn to 2 of 50 latent clusters, heavy-tailed
history lengths, arrivals spread over time) with short item titles is written as the generic `csv`
dataset and run through the protocol runner (K = 5, one seed). Two tables:

1. full-catalog scoring through the network, per user: candidates written out per task (the general
   path, as the inner loop and training use) vs the catalog as stride-0 rows (the path scoring takes),
   alternated in one run, with the scores checked equal;
2. the runner's wall time per method (fit, score), peak memory, and test NDCG@10 (EASE, a dense
   item x item inverse, is skipped above 20,000 items, and the table says so).

    python benchmarks/catalog_scale.py --out benchmarks/results
    python benchmarks/catalog_scale.py --items 100000 --users 50000 --methods popularity,itemknn,metarec \
        --rounds 1 --out benchmarks/results   # writes catalog_scale_100000.{md,json}
    # the same with every co-occurrence kept (no budget): catalog_scale_100000_cooc-all.{md,json}
    python benchmarks/catalog_scale.py --items 100000 --users 50000 --methods popularity,itemknn,metarec \
        --rounds 1 --cooc-budget 0 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from results_io import command_line, describe, metarec_root
from synthetic_data import synthetic_log


def network_paths(data, users: int, rounds: int) -> dict:
    """ms per user for full-catalog scoring through the network, both input layouts, alternated."""
    from metarec.data.protocol import fit_data
    from metarec.data import SplitConfig, make_split
    from metarec.meta.tasks import catalog_inputs, outer_inputs, support_weights
    from metarec.encoders import item_embeddings
    from metarec.models.features import FEATURES, ItemSide
    from metarec.models.scoring import ScoringConfig, ScoringModel

    split = make_split(data, SplitConfig(seed=0))
    fd = fit_data(split)
    side = ItemSide.build(item_embeddings(fd.items), fd.matrix, fd.recent)
    # the default features less "ease", which the fit leaves out at this catalog size
    model = ScoringModel(ScoringConfig(features=FEATURES), side.text.shape[1], side.n_items,
                         generator=torch.Generator().manual_seed(0))
    ep = split.episodes("val", 5)
    sup, rat = ep.support_items[:users], ep.support_ratings[:users]
    mask = np.ones(sup.shape, bool)
    sf = side.support_features(sup, mask)
    w = support_weights(rat, mask, 5.0, True)
    prof = np.zeros((len(sup), side.text.shape[1]), np.float32)
    warm = side.counts > 0
    text = torch.from_numpy(side.text)
    n_i = side.n_items
    layouts = {
        "per-task rows": lambda: outer_inputs(model.cfg,
                                              np.ascontiguousarray(np.broadcast_to(np.arange(n_i), (len(sup), n_i))),
                                              sf, np.broadcast_to(warm, (len(sup), n_i)), sup, w, prof),
        "stride-0 catalog": lambda: catalog_inputs(model.cfg, sf, warm, sup, w, prof),
    }
    times = {k: [] for k in layouts}
    outs = {}
    for _ in range(rounds):
        for name, make in layouts.items():
            t0 = time.perf_counter()
            with torch.no_grad():
                outs[name] = model(text, make())
            times[name].append((time.perf_counter() - t0) * 1e3 / len(sup))
    a, b = outs.values()
    return {"users": len(sup), "items": n_i, "equal": bool(torch.equal(a, b)), "cooc_nnz": int(side.cooc.nnz),
            "cooc_mb": round((side.cooc.data.nbytes + side.cooc.indices.nbytes + side.cooc.indptr.nbytes) / 1e6, 1),
            "ms_per_user": {k: float(np.median(v)) for k, v in times.items()}}


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=30000)
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--methods", default="popularity,itemknn,ease,metarec")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cooc-budget", type=int, default=None,
                    help="co-occurrences the item side stores at most (default: the library's COOC_BUDGET; "
                         "0 = every one); another value writes its own files")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    from metarec.models import features

    if args.cooc_budget is not None:
        features.COOC_BUDGET = args.cooc_budget or 2 ** 62

    from metarec.bench.runner import BenchmarkConfig, run_benchmark
    from metarec.data import load_dataset

    command, git = command_line(), describe(metarec_root())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        root.mkdir()
        n_rows = synthetic_log(root, args.items, args.users, args.seed)
        data = load_dataset("csv", root)
        net = network_paths(data, users=64, rounds=args.rounds)
        t0 = time.perf_counter()
        res = run_benchmark(BenchmarkConfig(dataset="csv", data_dir=str(root), methods=tuple(args.methods.split(",")),
                                            shots=(5,), seeds=1), data=data)
        wall = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    split = res.splits[0]
    ndcg = {(r["split"], r["method"]): r["value"] for r in res.records
            if r["split"] in ("val", "test") and r["scenario"] == "all" and r["metric"] == "ndcg@10"}
    rows = [{"method": t["method"], "fit_s": round(t["fit_s"], 1), "score_s": round(t["score_s"], 1),
             "val_ndcg@10": ndcg.get(("val", t["method"])), "ndcg@10": ndcg.get(("test", t["method"]))}
            for t in res.timings]
    starts = {m: _start(d[0]) for m, d in res.method_info.items() if d and d[0].get("feature_prior")}
    info = {"command": command, "git": git, "python": platform.python_version(), "machine": platform.machine(),
            "torch_threads": torch.get_num_threads(), "interactions": n_rows, "split": split,
            "network": net, "runner": rows, "skipped": res.skipped, "runner_wall_s": round(wall, 1),
            "peak_rss_gb": round(peak_gb, 2), "cooc_budget": features.COOC_BUDGET, "starts": starts}
    ms = net["ms_per_user"]
    t1 = ("| layout | ms per user |\n|---|---|\n" + "\n".join(f"| {k} | {v:.2f} |" for k, v in ms.items())
          + f"\n\nratio {ms['per-task rows'] / ms['stride-0 catalog']:.2f}x over {net['users']} users x "
          f"{net['items']} items, median of {args.rounds} alternated rounds; scores equal: {net['equal']}")
    t2 = ("| method | fit (s) | score (s) | validation NDCG@10, K=5 | test NDCG@10, K=5 |\n|---|---|---|---|---|\n"
          + "\n".join(f"| {r['method']} | {r['fit_s']} | {r['score_s']} | {_fmt(r['val_ndcg@10'])} | "
                      f"{_fmt(r['ndcg@10'])} |" for r in rows)
          + "".join(f"\n| {m} | skipped: {why} | | | |" for m, why in res.skipped.items()))
    kept = ("every co-occurrence kept" if args.cooc_budget == 0 else
            f"item side's co-occurrence budget {features.COOC_BUDGET:,} entries (each item keeps its "
            f"{features.COOC_BUDGET // args.items:,} strongest cosines when the whole matrix holds more)")
    kept += f": the item side stores {net['cooc_nnz']:,} co-occurrences ({net['cooc_mb']} MB)"
    md = (f"# metarec on a larger synthetic catalog\n\nProduced by:\n\n```\n{command}\n```\n\n"
          f"{args.items} items, {args.users} users, {n_rows} interactions; split: {json.dumps(split)}\n\n"
          f"## Full-catalog scoring through the network\n\n{t1}\n\n## Runner, one seed\n\n{t2}\n\n"
          f"Validation users: the ones the runner scores at K = 5 (tuning and early stopping use at most 1,000 "
          f"of them). {kept[0].upper() + kept[1:]}.\n\n"
          + "".join(_start_line(m, st) + "\n\n" for m, st in starts.items())
          + f"Runner wall time {wall:.0f} s; peak resident memory {peak_gb:.2f} GB; git {git}, "
          f"{platform.machine()}, Python {platform.python_version()}, {torch.get_num_threads()} torch threads.\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # the default size keeps its name; another size gets its own files beside it
    stem = "catalog_scale" if args.items == 30000 else f"catalog_scale_{args.items}"
    if args.cooc_budget is not None:
        stem += f"_cooc{args.cooc_budget or '-all'}"
    (out / f"{stem}.json").write_text(json.dumps(info, indent=1, default=str))
    (out / f"{stem}.md").write_text(md)
    print(md)


def _start(d: dict) -> dict:
    """What a metarec fit chose before meta-training (its describe()): the start and how long it trained."""
    fp = d["feature_prior"]
    return {"chosen": fp["chosen"], "inner_lr": fp["inner_lr"], "candidates": len(fp["val_ndcg@10"]),
            "best_step": d.get("best_step"), "steps_run": d.get("steps_run")}


def _start_line(method: str, st: dict) -> str:
    weights = ", ".join(f"{k} {v:g}" for k, v in st["chosen"].items())
    return (f"{method}'s start, chosen on validation users from {st['candidates']} candidates: feature weights "
            f"{weights}, inner lr {st['inner_lr']}; meta-training ran {st['steps_run']} steps and kept step "
            f"{st['best_step']}.")


if __name__ == "__main__":
    main()
