"""Ablation of metarec's default on ML-100K under the protocol: text only vs text + id, head vs all
adaptation, MAML vs FOMAML vs MetaSGD vs no inner steps, and the softmax instead of approx-NDCG@10 as
the outer loss. Each variant is the default with one change.

    python benchmarks/ablation.py --data-dir ../shared/data/ml-100k --seeds 5 --shots 1,3,5,10 --out benchmarks/results/ml-100k-ablation
    python benchmarks/ablation.py --data-dir ../shared/data/ml-100k --seeds 3 --fixed-steps 300 \
        --out benchmarks/results/ml-100k-ablation-300-steps
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from metarec.bench.runner import BenchmarkConfig
from metarec.meta.trainer import TrainConfig
from metarec.methods.metarec import MetaRecMethod
from metarec.methods.registry import register
from metarec.models.scoring import ScoringConfig
from results_io import run_report

BASE = MetaRecMethod.default_meta  # the shipped inner loop and outer loss
VARIANTS = {
    "default (maml, head, text+id, approx-ndcg outer loss)": {},
    "text only (no item ids)": {"head": ScoringConfig(use_ids=False)},
    "adapt all": {"meta": replace(BASE, adapt="all")},
    "fomaml": {"meta": replace(BASE, algorithm="fomaml")},
    "metasgd": {"meta": replace(BASE, algorithm="metasgd")},
    "no inner steps": {"meta": replace(BASE, inner_steps=0)},
    "softmax outer loss": {"meta": replace(BASE, outer_loss=None)},
}


def variant_class(label: str, options: dict, fixed_steps: int | None = None) -> type:
    name = "metarec:" + label.split(" (")[0].replace(" ", "-")
    if fixed_steps is not None:
        # every variant trains exactly this many steps: early stopping (which keeps the
        # initialisation when training does not help) would otherwise hide the algorithms' effect
        options = {**options, "train": TrainConfig(steps=fixed_steps, keep_best=False)}

    class Variant(MetaRecMethod):
        def __init__(self, seed: int = 0, device: str = "cpu") -> None:
            super().__init__(seed=seed, device=device, **options)

    Variant.name = name
    Variant.__name__ = f"Variant_{name}"
    return register(Variant)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/ml-100k")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--shots", default="1,5,10")
    ap.add_argument("--out", default="benchmarks/results/ml-100k-ablation")
    ap.add_argument("--fixed-steps", type=int, default=None,
                    help="train every variant exactly N meta-steps, no early stopping")
    args = ap.parse_args()
    names = tuple(variant_class(label, opts, args.fixed_steps).name for label, opts in VARIANTS.items())
    cfg = BenchmarkConfig(dataset="ml-100k", data_dir=args.data_dir, methods=names,
                          shots=tuple(int(s) for s in args.shots.split(",")), seeds=args.seeds)
    run_report(cfg, args.out)


if __name__ == "__main__":
    main()
