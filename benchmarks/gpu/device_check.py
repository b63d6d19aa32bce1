"""Meta-train and score on a device (`--device cuda`) and on the CPU from the same start: same numbers?

The CUDA path of `metarec meta-train --device` / `MetaRecommender(device=)` end to end on ML-100K,
without the text encoder (vectors from `meta_speed.py --save-vectors`, as on the GPU machines here):
the default network, second-order MAML and the approx_ndcg outer loss, `--steps` meta-steps with
validation every 10, then test users' NDCG@10 at K = 5, and the checkpoint written on the device
read back on the CPU. The weights compared are the last step's. The CPU run
is the reference: the device run should follow it to float rounding (CUDA sums in other orders), pick
the same validation step, and its checkpoint should score on the CPU as it did on the device. The
test users' top-10 lists from `recommend_many` (the batched path) are compared too.

    python benchmarks/gpu/device_check.py --device cuda --vectors .devcarry/ml100k_vectors.npz --out $OUT

With `--device cpu` both runs are on the CPU and must agree bit for bit (a check of the script).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/, for meta_speed
from meta_speed import speed_problem  # noqa: E402


def run(device: str, args, work: Path) -> dict:
    """Meta-train from the seeded start on `device`; what it learnt, how fast, how it scores."""
    from metarec.data.protocol import make_validator, metrics_for, score_episodes
    from metarec.meta.learners import MetaConfig
    from metarec.meta.recommender import MetaRecommender, RecommenderInfo
    from metarec.meta.trainer import MetaTrainer, TrainConfig

    dev = torch.device(device)
    data, split, side, md, _, model = speed_problem(args.data_dir, torch.device("cpu"), args.vectors)
    meta = MetaConfig(inner_lr=0.1, outer_loss="approx_ndcg")  # metarec's outer loss
    rec = MetaRecommender(model, meta, side, RecommenderInfo(n_inner_neg=20), item_ids=data.item_ids.tolist(),
                          seed=0, device=device)  # moves the model to the device
    trainer = MetaTrainer(model, rec.item_text, md, meta,
                          TrainConfig(steps=args.steps, eval_every=10, patience=100, seed=0,
                                      cuda_graphs=args.cuda_graphs, keep_best=False))
    rec.learner = trainer.learner

    def score(batch):
        return rec.score_batch(batch.support_items, batch.support_ratings)

    validator = make_validator(split, k=5)
    trainer.evaluate = lambda *_: validator(score)
    out = work / device.replace(":", "_")
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    trainer.fit(out)
    fit_s = time.perf_counter() - t0
    rec.save(out, state=trainer.best_state)
    ep = split.episodes("test", 5)
    scores = score_episodes(score, split, ep)
    ndcg = float(np.nanmean(metrics_for(scores, ep, ks=(10,))["ndcg@10"]))
    on_cpu = MetaRecommender.load(out)  # the checkpoint written from `device`, read back on the CPU
    reread = score_episodes(lambda b: on_cpu.score_batch(b.support_items, b.support_ratings), split, ep)
    import pandas as pd

    log = pd.DataFrame({"user_id": np.repeat(np.arange(len(ep)), ep.k),
                        "item_id": data.item_ids[ep.support_items.ravel()], "rating": ep.support_ratings.ravel()})
    lists = rec.recommend_many(log, 10)
    finite = np.isfinite(scores)
    return {"lists": lists["item_id"].tolist(), "device": str(dev), "fit_s": round(fit_s, 2), "steps": trainer.step,
            "best_step": trainer.best_step, "cuda_graphs": trainer.graphed.captures if trainer.graphed else 0,
            "val_history": [round(h["val"], 6) for h in trainer.history], "test_ndcg@10_k5": ndcg,
            "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "scores": scores,
            "checkpoint_on_cpu_max_abs_diff": float(np.abs(reread[finite] - scores[finite]).max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--data-dir", default="../shared/data/ml-100k")
    ap.add_argument("--vectors", default=None, help=".npz from meta_speed.py --save-vectors (else encode here)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--cuda-graphs", default="auto", help="TrainConfig.cuda_graphs of both runs: auto, on or off")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ref, dut = run("cpu", args, Path(tmp) / "a"), run(args.device, args, Path(tmp) / "b")
    w_diff = max(float((ref["weights"][k] - dut["weights"][k]).abs().max()) for k in ref["weights"])
    finite = np.isfinite(ref["scores"])
    s_diff = float(np.abs(ref["scores"][finite] - dut["scores"][finite]).max())
    v_diff = max(abs(a - b) for a, b in zip(ref["val_history"], dut["val_history"]))
    same_best = ref["best_step"] == dut["best_step"]
    same_lists = ref["lists"] == dut["lists"]
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    rows = [{k: r[k] for k in ("device", "fit_s", "steps", "cuda_graphs", "best_step", "test_ndcg@10_k5",
                               "checkpoint_on_cpu_max_abs_diff")} for r in (ref, dut)]
    lines = ["| run | fit (s) | steps | CUDA graphs captured | best step | test NDCG@10, K=5 | its checkpoint on the "
             "CPU: max abs score diff |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['device']} | {r['fit_s']} | {r['steps']} | {r['cuda_graphs']} | {r['best_step']} | "
              f"{r['test_ndcg@10_k5']:.4f} | {r['checkpoint_on_cpu_max_abs_diff']:.2e} |" for r in rows]
    lines += ["", f"{args.device} against the CPU: weights max abs diff {w_diff:.2e}; test scores max abs diff "
              f"{s_diff:.2e}; validation NDCG@10 max abs diff over the {len(ref['val_history'])} evaluations "
              f"{v_diff:.2e}; same best step: {same_best}; same top-10 lists from recommend_many: {same_lists}."]
    table = "\n".join(lines)
    print(table)
    info = {"command": command, "torch": torch.__version__, "python": platform.python_version(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "runs": rows,
            "val_history": {"cpu": ref["val_history"], args.device: dut["val_history"]},
            "weights_max_abs_diff": w_diff, "scores_max_abs_diff": s_diff, "val_max_abs_diff": v_diff,
            "same_best_step": same_best, "same_lists": same_lists}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"device_check_{args.device.replace(':', '_')}"
    (out / f"{tag}.json").write_text(json.dumps(info, indent=1) + "\n")
    (out / f"{tag}.md").write_text(f"# Meta-training on {args.device} against the CPU\n\nProduced by:\n\n```\n"
                                   f"{command}\n```\n\n{table}\n\ntorch {torch.__version__}"
                                   + (f", {info['gpu']}" if info["gpu"] else "") + ".\n")


if __name__ == "__main__":
    main()
