"""What reusing the head's input across the inner loop's steps saves, when only the head adapts (the
default): one meta-step (forward + backward, second-order MAML, 5 inner steps, K = 5) with
`ScoringModel.inner_fixed` (the user and item vectors; since 5660604 the head's whole input, [u * v,
feats]) computed once per inner loop vs once per step, alternated in one run; the count of
profiled operator calls (on a GPU, each is a kernel launch, and launches bound the step there); and
the largest difference between the two meta-gradients. Prints a table; writes JSON and Markdown.

    python benchmarks/inner_reuse.py --data-dir ../shared/data/ml-100k --out benchmarks/results
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from meta_speed import speed_problem
from results_io import publish


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/ml-100k")
    ap.add_argument("--batches", default="32,256", help="meta-batch sizes, comma-separated")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--vectors", default=None, help=".npz with `items` and `profiles` instead of encoding the texts")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()

    from metarec.meta.learners import MetaConfig, make_learner
    from metarec.meta.tasks import sample_tasks
    from metarec.models.scoring import ScoringModel

    data, _, _, md, text, model = speed_problem(args.data_dir, torch.device("cpu"), args.vectors)
    reuse = ScoringModel.inner_fixed
    variants = {"reused": reuse, "recomputed": lambda self, *a, **k: None}
    rows = []
    for t in [int(b) for b in args.batches.split(",")]:
        batch = sample_tasks(md, model.cfg, np.random.default_rng(0), n_tasks=t, k=5)
        learner = make_learner(model, MetaConfig(inner_steps=5), text)
        times: dict[str, list[float]] = {v: [] for v in variants}
        ops, grads = {}, {}
        for r in range(args.rounds + 1):  # round 0: profiled, and the gradients kept
            for name, fn in variants.items():
                ScoringModel.inner_fixed = fn
                model.zero_grad(set_to_none=True)
                if not r:
                    with torch.profiler.profile() as prof:
                        learner.meta_loss(batch).backward()
                    ops[name] = int(sum(e.count for e in prof.key_averages()))
                    grads[name] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
                    continue
                t0 = time.perf_counter()
                learner.meta_loss(batch).backward()
                times[name].append(time.perf_counter() - t0)
        ScoringModel.inner_fixed = reuse
        med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
        diff = max(float((grads["reused"][n] - grads["recomputed"][n]).abs().max()) for n in grads["reused"])
        rows.append({"meta_batch": t, "reused_ms": round(med["reused"], 2), "recomputed_ms": round(med["recomputed"], 2),
                     "speedup": round(med["recomputed"] / med["reused"], 2), "reused_ops": ops["reused"],
                     "recomputed_ops": ops["recomputed"], "max_abs_grad_diff": diff})
    lines = ["| meta-batch (users) | head input reused ms | recomputed ms | speed-up | operator calls reused | recomputed | "
             "max meta-gradient diff |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['meta_batch']} | {r['reused_ms']} | {r['recomputed_ms']} | {r['speedup']}x | {r['reused_ops']} | "
                     f"{r['recomputed_ops']} | {r['max_abs_grad_diff']:.1e} |")
    publish(args.out, "inner_reuse", "Inner loop: the head's input computed once vs once per step (CPU)",
            "\n".join(lines), f"Median of {args.rounds} alternated rounds of one meta-step of the default network "
            "(float32; the gradients differ by summation order only).", {"rows": rows}, rounds=args.rounds)


if __name__ == "__main__":
    main()
