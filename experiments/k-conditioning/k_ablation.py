"""K conditioning ablation: metarec's start conditioned on the support size (two anchors, K = 1 and
K = 10, interpolated in log(1 + K); the default), with the inner rate conditioned too
(`metarec:k-rate`), and one start for every K (`metarec:one-start`); the default and one start also
pooled (`pooled-finetune`, the same network trained without an inner loop); beside the classical
methods. (At commit 301cd40, where the tables in this folder were made, the K rate was on by
default: its `metarec` is today's `metarec:k-rate`, its `metarec:fixed-rate` today's `metarec`.)

    PYTHONPATH=benchmarks python experiments/k-conditioning/k_ablation.py --dataset ml-100k \
        --data-dir ../shared/data/ml-100k --out /tmp/k-ml-100k
"""

from __future__ import annotations

import argparse

from metarec.bench.runner import BenchmarkConfig
from metarec.methods.metarec import MetaRecMethod, PooledFinetune
from metarec.methods.registry import register
from metarec.models.scoring import ScoringConfig
from results_io import run_report

ONE_START = {"head": ScoringConfig(k_anchors=None)}
K_RATE = {"head": ScoringConfig(k_inner_lr=True)}


def variant(base: type, name: str, options: dict) -> str:
    class Variant(base):
        def __init__(self, seed: int = 0, device: str = "cpu", **kw) -> None:
            super().__init__(seed=seed, device=device, **{**options, **kw})

    Variant.name = name
    Variant.__name__ = f"Variant_{name}"
    register(Variant)
    return name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--data-dir", default="../shared/data/ml-100k")
    ap.add_argument("--split", default="time")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--shots", default="1,3,5,10,20")
    ap.add_argument("--baselines", default="ease,itemknn,popularity,als")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    methods = ("metarec", "pooled-finetune",
               variant(MetaRecMethod, "metarec:k-rate", K_RATE),
               variant(MetaRecMethod, "metarec:one-start", ONE_START),
               variant(PooledFinetune, "pooled-finetune:one-start", ONE_START),
               *[m for m in args.baselines.split(",") if m])
    cfg = BenchmarkConfig(dataset=args.dataset, data_dir=args.data_dir, methods=methods, split=args.split,
                          shots=tuple(int(s) for s in args.shots.split(",")), seeds=args.seeds)
    run_report(cfg, args.out)


if __name__ == "__main__":
    main()
