"""Data-parallel meta-training throughput: meta-steps per second at 1, 2, ... processes
(torch.distributed; gloo on the CPU, NCCL on CUDA) with the same global meta-batch, on ML-100K's
default problem (benchmarks/meta_speed.py's). Each process count runs in its own process group,
launched here as torchrun would (RANK, WORLD_SIZE, MASTER_ADDR/PORT); on the CPU the machine's
cores are divided among the processes, so the comparison holds the hardware fixed.

    python benchmarks/distributed_scaling.py --data-dir ../shared/data/ml-100k --ranks 1,2 --out benchmarks/results

Scaling efficiency = speed-up over 1 process / number of processes.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker(args) -> None:
    import torch

    from metarec.core.distributed import init_from_env, shutdown, world
    from metarec.meta.train import DEFAULT_META
    from metarec.meta.trainer import MetaTrainer, TrainConfig

    sys.path.insert(0, str(HERE))
    from meta_speed import speed_problem

    init_from_env(args.device)
    rank, size = world()
    dev = torch.device(args.device if args.device != "cuda" else f"cuda:{os.environ.get('LOCAL_RANK', '0')}")
    *_, md, text, model = speed_problem(args.data_dir, dev)
    trainer = MetaTrainer(model, text, md, DEFAULT_META, TrainConfig(meta_batch=args.meta_batch, seed=0))
    for _ in range(args.warmup):
        trainer.meta_step()
    if size > 1:
        torch.distributed.barrier()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = trainer.meta_step()
    float(loss)  # waits for the last step
    took = time.perf_counter() - t0
    if rank == 0:
        Path(args.worker).write_text(json.dumps({"ranks": size, "steps_per_s": args.steps / took, "seconds": took,
                                                 "threads_per_rank": torch.get_num_threads()}))
    shutdown()


def launch(args, n: int, out: Path) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    threads = str(max(1, (os.cpu_count() or 1) // n)) if args.device == "cpu" else os.environ.get("OMP_NUM_THREADS", "1")
    procs = []
    for rank in range(n):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "RANK": str(rank), "LOCAL_RANK": str(rank),
               "WORLD_SIZE": str(n), "OMP_NUM_THREADS": threads, "METAREC_NO_PROGRESS": "1"}
        cmd = [sys.executable, __file__, "--worker", str(out), "--data-dir", args.data_dir, "--device", args.device,
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--meta-batch", str(args.meta_batch)]
        procs.append(subprocess.Popen(cmd, env=env))
    if any(p.wait() for p in procs):
        raise SystemExit(f"the {n}-process run failed")
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/ml-100k")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--meta-batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2, help="each process count is timed this many times, interleaved")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    sys.path.insert(0, str(HERE))
    from results_io import publish

    ranks = [int(r) for r in args.ranks.split(",")]
    runs: dict[int, list[dict]] = {n: [] for n in ranks}
    tmp = Path(args.out) / ".scaling-tmp.json"
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for _ in range(args.rounds):
        for n in ranks:
            runs[n].append(launch(args, n, tmp))
    tmp.unlink(missing_ok=True)
    best = {n: max(r["steps_per_s"] for r in rs) for n, rs in runs.items()}
    base = best[ranks[0]] / ranks[0]
    rows = ["| processes | threads each | meta-steps/s (best of rounds) | speed-up | scaling efficiency |",
            "|---|---|---|---|---|"]
    for n in ranks:
        rows.append(f"| {n} | {runs[n][0]['threads_per_rank']} | {best[n]:.2f} | {best[n] / (base * ranks[0]):.2f}x | "
                    f"{best[n] / (base * n):.0%} |")
    note = (f"Global meta-batch {args.meta_batch} users (split across the processes), {args.steps} timed steps after "
            f"{args.warmup} warm-up steps, {args.rounds} interleaved rounds, device {args.device}, "
            f"{os.cpu_count()} cores in all.")
    publish(args.out, f"distributed_scaling_{args.device}", "Data-parallel meta-training throughput", "\n".join(rows),
            note, {"runs": {str(n): rs for n, rs in runs.items()}})


if __name__ == "__main__":
    main()
