"""Meta-train metarec on any interaction log from Python: the protocol's split, the warm users'
tasks, early stopping on validation users, a checkpoint folder that `MetaRecommender.load` reads.

    from metarec.bench.train import meta_train
    from metarec.data import load_dataset

    method = meta_train(load_dataset("csv", "my_log/"), out="models/mine")
    print(method.trainer.best, method.trainer.best_step)

`metarec meta-train` is this function behind a command line.
"""

from __future__ import annotations

from pathlib import Path

from metarec.bench.evaluate import VAL_SAMPLE, fit_data, make_validator
from metarec.data import SplitConfig, make_split
from metarec.data.interactions import InteractionData
from metarec.encoders import EncoderConfig
from metarec.meta.learners import MetaConfig
from metarec.meta.trainer import TrainConfig
from metarec.methods.neural import MetaRecMethod


def meta_train(data: InteractionData, out: str | Path | None = None, *, seed: int = 0,
               meta: MetaConfig | None = None, train: TrainConfig | None = None,
               encoder: EncoderConfig | None = None, device: str = "cpu", resume: bool = True,
               val_shots: int = 5, max_val_users: int | None = VAL_SAMPLE) -> MetaRecMethod:
    """Fit metarec on `data` and (with `out`) save it there, with `training.png` (validation NDCG@10
    and training loss against the step); an unfinished run in `out` resumes.

    The split is the protocol's (a time cut when the log has timestamps, else a seeded random user
    split); every choice (the start, early stopping) reads validation users' NDCG@10 at
    K = `val_shots`, and test users are never touched. `train.seed` follows `seed`.
    """
    split = make_split(data, SplitConfig(seed=seed, mode="time" if data.has_timestamps else "random"))
    method = MetaRecMethod(seed=seed, meta=meta, train=train, encoder=encoder,
                           out=str(out) if out is not None else None, resume=resume, device=device)
    method.fit(fit_data(split), make_validator(split, k=val_shots, max_users=max_val_users),
               item_ids=data.item_ids.tolist(), titles=data.titles(range(data.n_items)))
    if out is not None and method.trainer.history:
        from metarec.bench.plots import plot_training

        t = method.trainer
        plot_training(t.history, t.best_step, Path(out) / "training.png",
                      title=f"{data.name}: meta-training (kept step {t.best_step}, validation {t.best:.4f})",
                      val_label=f"validation NDCG@10 (K = {val_shots})")
    return method
