"""Frozen encoder against LoRA adapters trained with meta-training: validation NDCG@10 at every
evaluation and wall time, same seed, same split, same start (the start search runs before the
adapters train, so it is the same in both arms), no early stopping.

    PYTHONPATH=benchmarks python experiments/adapters/curves.py --dataset ml-100k-imdb --data-dir ../shared/data \
        --steps 100 --out experiments/adapters
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from results_io import command_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-100k-imdb")
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="experiments/adapters")
    a = ap.parse_args()
    from metarec.data import load_dataset
    from metarec.encoders.adapters import AdapterConfig
    from metarec.meta.train import meta_train
    from metarec.meta.trainer import TrainConfig

    data = load_dataset(a.dataset, a.data_dir)
    train = TrainConfig(steps=a.steps, eval_every=20, patience=10 ** 6, seed=a.seed)
    rows = {}
    for name, adapters in (("frozen", None), ("adapters", AdapterConfig())):
        t0 = time.perf_counter()
        m = meta_train(data, seed=a.seed, train=train, adapters=adapters)
        rows[name] = {"seconds": time.perf_counter() - t0,
                      "val": {h["step"]: h["val"] for h in m.trainer.history}}
        print(name, json.dumps(rows[name]), flush=True)
    steps = sorted(rows["frozen"]["val"])
    lines = [f"# Frozen encoder vs LoRA adapters: validation NDCG@10 ({a.dataset}, seed {a.seed})", "",
             "```", command_line(), "```", "",
             "| step | " + " | ".join(steps and [str(s) for s in steps]) + " | wall s |",
             "|---|" + "---|" * (len(steps) + 1)]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{r['val'][s]:.4f}" for s in steps) + f" | {r['seconds']:.0f} |")
    out = Path(a.out)
    (out / "curves.md").write_text("\n".join(lines) + "\n")
    (out / "curves.json").write_text(json.dumps({"command": command_line(), "rows": rows}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
