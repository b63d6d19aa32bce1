"""Meta-training throughput (functional vs learn2learn backend) and single-user adapt+rank latency.

Same model, same meta-batch (users x K=5 support, 5 inner steps, second-order MAML, head adaptation),
backends alternated within one run. Latency: adapt one new ML-100K user from 5 interactions and rank
the full catalog (p50/p99). Prints a table; writes JSON and Markdown.

    python benchmarks/meta_speed.py --data-dir ../shared/data/ml-100k --out benchmarks/results

On a GPU: `--device cuda --batches 32,256`; there it also times the functional step replayed as CUDA
graphs (`metarec.meta.graphs`), which is how `MetaTrainer` runs it on a GPU.
`--vectors FILE.npz` takes the text embeddings from a file (arrays `items` [n_items, D] and
`profiles` [n_users, D], e.g. saved with `--save-vectors` on a machine that has the encoder) for
machines without it: the timings depend on the vectors' shapes, not their values.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch


def speed_problem(data_dir: str, dev: torch.device, vectors: str | None = None, save_vectors: str | None = None):
    """(data, split, side, meta-data, catalog text on dev, default ScoringModel on dev) for ML-100K's
    default split: the default features, ease included (lambda 3e4, ML-100K's usual validation choice;
    the value does not change the cost). `vectors`: an .npz with `items` and `profiles` instead of
    encoding the texts; `save_vectors`: write the encoded ones there."""
    from metarec.data.protocol import fit_data
    from metarec.data import load_dataset, make_split
    from metarec.encoders import item_embeddings, profile_vectors
    from metarec.meta.train import meta_data
    from metarec.models.features import ItemSide
    from metarec.models.scoring import ScoringConfig, ScoringModel

    data = load_dataset("ml-100k", data_dir)
    split = make_split(data)
    fd = fit_data(split)
    if vectors:
        with np.load(vectors, allow_pickle=False) as z:
            vecs, profiles = z["items"].astype(np.float32), z["profiles"].astype(np.float32)
        if len(vecs) != len(fd.items):
            raise SystemExit(f"{vectors}: {len(vecs)} item rows, the catalog has {len(fd.items)} items")
    else:
        vecs, profiles = item_embeddings(fd.items), profile_vectors(fd.users)
        if save_vectors:
            np.savez(save_vectors, items=vecs, profiles=profiles)
    side = ItemSide.build(vecs, fd.matrix, fd.recent, ease_lambda=3e4)
    md = meta_data(fd, side, None, profiles=profiles)
    text = torch.from_numpy(side.text).to(dev)
    model = ScoringModel(ScoringConfig(), side.text.shape[1], side.n_items,
                         generator=torch.Generator().manual_seed(0)).to(dev)
    return data, split, side, md, text, model


def dispatched_ops(step) -> int:
    """How many aten ops `step()` dispatches, views and `_unsafe_view` left out (they move no data).
    On a GPU each of the others launches at least one kernel, and a meta-step there is bound by
    its launches, not its arithmetic (meta_speed_cuda.md): the count tracks that cost on any machine."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not func.is_view and func is not torch.ops.aten._unsafe_view.default:
                self.n += 1
            return func(*args, **(kwargs or {}))

    with Count() as c:
        step()
    return c.n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/ml-100k")
    ap.add_argument("--batches", default="32", help="meta-batch sizes, comma-separated (e.g. 32,256)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--inner-steps", type=int, default=5)
    ap.add_argument("--latency-users", type=int, default=100)
    ap.add_argument("--latency-device", default=None, help="also time adapt + rank there (e.g. cuda)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--vectors", default=None, help=".npz with `items` and `profiles` instead of encoding the texts")
    ap.add_argument("--save-vectors", default=None, help="write the encoded vectors to this .npz and go on")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()

    from metarec.meta.graphs import GraphedMetaLoss
    from metarec.meta.learners import MetaConfig, make_learner
    from metarec.meta.recommender import MetaRecommender, RecommenderInfo
    from metarec.meta.tasks import sample_tasks

    dev = torch.device(args.device)
    data, split, side, md, text, model = speed_problem(args.data_dir, dev, args.vectors, args.save_vectors)
    rows = []
    for T in [int(b) for b in args.batches.split(",")]:
        rng = np.random.default_rng(0)
        batch = sample_tasks(md, model.cfg, rng, n_tasks=T, k=5).to(device=dev)
        learners = {b: make_learner(model, MetaConfig(inner_steps=args.inner_steps, backend=b), text)
                    for b in ("functional", "learn2learn")}
        steps = {b: (lambda lrn=lrn: lrn.meta_loss(batch).backward()) for b, lrn in learners.items()}
        if dev.type == "cuda":  # the functional step as the trainer runs it there: replayed CUDA graphs
            graphed = GraphedMetaLoss(learners["functional"].meta_loss, learners["functional"].outer_parameters())
            steps["graphed"] = lambda: graphed(batch)  # round 0 captures the graph
        times = {b: [] for b in steps}
        peak = {}
        for r in range(args.rounds + 1):  # round 0 is warm-up
            for b, step in steps.items():
                model.zero_grad(set_to_none=True)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                    if not r:
                        torch.cuda.reset_peak_memory_stats(dev)
                t0 = time.perf_counter()
                step()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                    if not r:  # peak of one forward+backward, this backend alone
                        peak[b] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
                if r:
                    times[b].append(time.perf_counter() - t0)
        ops = {}
        for b, lrn in learners.items():
            model.zero_grad(set_to_none=True)
            try:  # a count that fails (on another machine's torch) must not lose the timings above
                ops[b] = dispatched_ops(lambda: lrn.meta_loss(batch).backward())
            except Exception as e:  # noqa: BLE001
                print(f"op count for {b} failed: {e!r}", file=sys.stderr)
                ops[b] = None
        med = {b: float(np.median(v)) for b, v in times.items()}
        rows.append({"meta_batch": T, "functional_ms": round(med["functional"] * 1e3, 2),
                     "learn2learn_ms": round(med["learn2learn"] * 1e3, 2),
                     "functional_tasks_per_s": round(T / med["functional"], 1),
                     "learn2learn_tasks_per_s": round(T / med["learn2learn"], 1),
                     "speedup": round(med["learn2learn"] / med["functional"], 2),
                     "functional_ops": ops["functional"], "learn2learn_ops": ops["learn2learn"],
                     **({"functional_peak_mib": peak["functional"], "learn2learn_peak_mib": peak["learn2learn"]}
                        if peak else {}),
                     **({"graphed_ms": round(med["graphed"] * 1e3, 2),
                         "graphed_speedup": round(med["learn2learn"] / med["graphed"], 2),
                         "graphed_peak_mib": peak["graphed"]} if "graphed" in med else {})})
    # single-user latency: adapt on 5 interactions + rank 1,682 items, on the CPU (the target's
    # setting) and, with --latency-device, also there (MetaRecommender(device=...))
    ep = split.episodes("test", 5)

    def latency(where: str) -> list[float]:
        rec = MetaRecommender(model, MetaConfig(inner_steps=args.inner_steps), side, RecommenderInfo(),
                              item_ids=data.item_ids.tolist(), device=where)
        out = []
        for r in range(min(args.latency_users, len(ep)) + 5):
            row = r % len(ep)
            t0 = time.perf_counter()
            user = rec.adapt([data.item_ids[i] for i in ep.support_items[row]], ratings=ep.support_ratings[row])
            user.recommend(10)  # scores come back to the host: the device work is done
            if r >= 5:
                out.append((time.perf_counter() - t0) * 1e3)
        return out

    extra = {}
    if args.latency_device:
        lat_dev = latency(args.latency_device)
        extra = {"device": args.latency_device, "p50": float(np.percentile(lat_dev, 50)),
                 "p99": float(np.percentile(lat_dev, 99)), "n": len(lat_dev)}
    lat = latency("cpu")
    p50, p99 = float(np.percentile(lat, 50)), float(np.percentile(lat, 99))
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    meta = {"command": command, "device": str(dev), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version(), "inner_steps": args.inner_steps, "k": 5,
            "algorithm": "maml (second order), head adaptation", "rounds": args.rounds,
            "gpu": torch.cuda.get_device_name(0) if dev.type == "cuda" else None}
    lines = ["| meta-batch (users) | functional ms | learn2learn ms | functional tasks/s | learn2learn tasks/s "
             "| speed-up | functional ops | learn2learn ops |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['meta_batch']} | {r['functional_ms']} | {r['learn2learn_ms']} | "
                     f"{r['functional_tasks_per_s']} | {r['learn2learn_tasks_per_s']} | {r['speedup']}x | "
                     f"{r['functional_ops']} | {r['learn2learn_ops']} |")
    if dev.type == "cuda":
        lines += ["", "The functional step replayed as CUDA graphs (`metarec.meta.graphs`, what `MetaTrainer` runs on a "
                  "GPU by default):", "",
                  "| meta-batch (users) | graphed ms | learn2learn ms | graphed tasks/s | speed-up |", "|---|---|---|---|---|"]
        lines += [f"| {r['meta_batch']} | {r['graphed_ms']} | {r['learn2learn_ms']} | "
                  f"{round(r['meta_batch'] / r['graphed_ms'] * 1e3, 1)} | {r['graphed_speedup']}x |" for r in rows]
        lines += ["", "Peak GPU memory of one forward+backward (MiB): "
                  + "; ".join(f"{r['meta_batch']} users: functional {r['functional_peak_mib']}, "
                              f"learn2learn {r['learn2learn_peak_mib']}, graphed {r['graphed_peak_mib']} "
                              "(its first call: warm-up and capture)" for r in rows) + "."]
    lines += ["", f"Adapt one new user (5 interactions, {args.inner_steps} inner steps) + rank {side.n_items} items: "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms over {len(lat)} users (on the CPU, "
              f"{torch.get_num_threads()} threads)."]
    if extra:
        lines += ["", f"The same on {extra['device']}: p50 {extra['p50']:.2f} ms, p99 {extra['p99']:.2f} ms over "
                  f"{extra['n']} users."]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "meta_speed" if dev.type == "cpu" else f"meta_speed_{dev.type}"
    targets = ("Targets (CPU): functional >= 5x learn2learn; adapt + rank p50 < 20 ms." if dev.type == "cpu" else
               "Targets (GPU): functional >= 20x learn2learn at 32 users per meta-batch, >= 200x at 256.")
    (out / f"{tag}.json").write_text(json.dumps({"meta": meta, "rows": rows, "latency_ms": {"p50": p50, "p99": p99,
                                                 "n": len(lat)}, **({"latency_ms_device": extra} if extra else {})},
                                                indent=2) + "\n")
    (out / f"{tag}.md").write_text(f"# Meta-training speed ({dev})\n\nProduced by:\n\n```\n{command}\n```\n\n{table}\n\n"
                                   f"Median of {args.rounds} alternated rounds, one forward+backward of the whole "
                                   f"meta-batch (second-order MAML, head adaptation). 'ops': aten ops dispatched "
                                   f"by one forward+backward, views left out (each is at least one kernel launch on "
                                   f"a GPU). torch {torch.__version__}, "
                                   f"{torch.get_num_threads()} threads. {targets}\n")


if __name__ == "__main__":
    main()
