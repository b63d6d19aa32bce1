"""How many ops one meta-step dispatches, and its CPU time, for this checkout and others, in one table.

On a GPU the functional backend's meta-step is bound by kernel launches, not arithmetic
(meta_speed_cuda.md: about 1,340 kernels in 43 ms at 256 users, the GPU busy for 4 ms), so the
number of ops a step dispatches is what its GPU time follows. The count is exact and the same on any
machine, so it can be tracked without a GPU. Each checkout runs in its own process, with its
`metarec` first on the path; ML-100K's default split, the meta_speed.py batch (K = 5, 5 inner steps).
The CPU times are medians over `--rounds` rounds that alternate the checkouts' processes.

    git worktree add /tmp/base REV      # the checkout to compare with
    python benchmarks/step_ops.py --data-dir ../shared/data/ml-100k --checkout /tmp/base --checkout . \\
        --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from results_io import check_checkout, checkout_env, describe, metarec_root, run_meta, torch_line, write_result

# (name, MetaConfig fields, users per meta-batch); "inference": one user adapted, no outer graph
CASES = [
    ("MAML, head, 32 users", {}, 32),
    ("MAML, head, 256 users", {}, 256),
    ("FOMAML, head, 32 users", {"algorithm": "fomaml"}, 32),
    ("MetaSGD, head, 32 users", {"algorithm": "metasgd"}, 32),
    ("MAML, all, 32 users", {"adapt": "all"}, 32),
    ("inference: adapt 1 user", {}, 1),
    ("learn2learn baseline, MAML, head, 32 users", {"backend": "learn2learn"}, 32),  # shares the losses
]


def count(data_dir: str, reps: int, seconds: float) -> dict:
    """{case: ops} and {case: median ms of at least `reps` timed steps, and of as many as fit in
    `seconds`} for the `metarec` this process imports."""
    import time

    import numpy as np
    import torch

    from meta_speed import dispatched_ops, speed_problem
    from metarec.meta.learners import MetaConfig, make_learner
    from metarec.meta.tasks import sample_tasks

    _, _, _, md, text, model = speed_problem(data_dir, torch.device("cpu"))
    out, ms = {}, {}
    for name, fields, users in CASES:
        batch = sample_tasks(md, model.cfg, np.random.default_rng(0), n_tasks=users, k=5).to(device="cpu")
        lrn = make_learner(model, MetaConfig(inner_steps=5, **fields), text)
        if name.startswith("inference"):
            def step():
                with torch.no_grad():
                    lrn.adapt(batch.inner, batch.inner_labels, batch.inner_mask, create_graph=False)
        else:
            def step():
                lrn.meta_loss(batch).backward()
        step()  # warm-up: lazily built state is not counted
        model.zero_grad(set_to_none=True)
        out[name] = dispatched_ops(step)
        times: list[float] = []
        while len(times) < reps or sum(times) < seconds:
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        ms[name] = float(np.median(times)) * 1e3
    return {"metarec": metarec_root(), "ops": out, "ms": ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/ml-100k")
    ap.add_argument("--checkout", action="append", help="a checkout whose metarec to count (repeat; default: .)")
    ap.add_argument("--rounds", type=int, default=9, help="timing rounds (each runs every checkout once)")
    ap.add_argument("--reps", type=int, default=5, help="timed steps per case in each round, at least")
    ap.add_argument("--seconds", type=float, default=2.0, help="and at least this long per case in each round")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(count(args.data_dir, args.reps, args.seconds)))
        return
    import numpy as np

    here = Path(__file__).resolve().parent
    roots = [str(Path(c).resolve()) for c in args.checkout or ["."]]
    runs: dict[str, list[dict]] = {r: [] for r in roots}
    for _ in range(max(args.rounds, 1)):
        for root in roots:
            cmd = [sys.executable, str(here / "step_ops.py"), "--worker", "--data-dir", args.data_dir,
                   "--reps", str(args.reps), "--seconds", str(args.seconds)]
            res = subprocess.run(cmd, env=checkout_env(root), capture_output=True, text=True, check=True)
            got = json.loads(res.stdout.strip().splitlines()[-1])
            check_checkout(root, got["metarec"])
            if runs[root] and got["ops"] != runs[root][0]["ops"]:
                raise SystemExit(f"{root}: the op counts changed between rounds")
            runs[root].append(got)
    cols = [{"checkout": root, "rev": describe(root), "ops": runs[root][0]["ops"],
             "ms": {name: round(float(np.median([g["ms"][name] for g in runs[root]])), 2) for name, _, _ in CASES}}
            for root in roots]
    two = len(cols) > 1
    head = ("| meta-step | " + " | ".join(f"ops at {c['rev']}" for c in cols) + (" | ops change" if two else "")
            + " | " + " | ".join(f"CPU ms at {c['rev']}" for c in cols)
            + (" | speed-up | speed-up per round, min-max |" if two else " |"))
    lines = [head, "|" + "---|" * (1 + 2 * len(cols) + 3 * two)]
    for name, _, _ in CASES:
        ops, ms = [c["ops"][name] for c in cols], [c["ms"][name] for c in cols]
        per_round = [a["ms"][name] / b["ms"][name] for a, b in zip(runs[roots[0]], runs[roots[-1]])]
        lines.append(f"| {name} | " + " | ".join(str(v) for v in ops)
                     + (f" | {100 * (ops[-1] / ops[0] - 1):+.1f}%" if two else "")
                     + " | " + " | ".join(f"{v:.2f}" for v in ms)
                     + (f" | {ms[0] / ms[-1]:.2f}x | {min(per_round):.2f}-{max(per_round):.2f}x |" if two else " |"))
    table = "\n".join(lines)
    print(table)
    meta = run_meta(rounds=args.rounds, reps=args.reps, seconds=args.seconds)
    note = ("'ops': aten ops dispatched by one forward+backward of the functional backend unless named (MAML "
            "and MetaSGD: second order; inference: the inner loop alone, without the outer graph), views left out: "
            "on a GPU each is at least one kernel launch. 'CPU ms': the median over rounds of each round's median of "
            f"at least {args.reps} steps and {args.seconds:g} s, the checkouts' processes alternated in each of "
            f"{args.rounds} rounds; a round's speed-up compares the first and last checkouts' processes of that "
            "round (the spread shows how much one process's timing varies on this machine; the op counts are "
            "exact). ML-100K, "
            "K = 5 support items, 5 inner steps, the default head. 'ops change' and 'speed-up': the last column "
            f"against the first. {torch_line(meta)}")
    write_result(args.out, "step_ops", {"meta": meta, "columns": cols}, "Ops and CPU time per meta-step",
                 meta["command"], f"{table}\n\n{note}")


if __name__ == "__main__":
    main()
