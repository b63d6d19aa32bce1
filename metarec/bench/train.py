"""Meta-train metarec on any interaction log from Python: the protocol's split, the warm users'
tasks, early stopping on validation users, a checkpoint folder that `MetaRecommender.load` reads.

    from metarec.bench.train import meta_train
    from metarec.data import load_dataset

    method = meta_train(load_dataset("csv", "my_log/"), out="models/mine")
    print(method.trainer.best, method.trainer.best_step)

`metarec meta-train` is this function behind a command line. The folder also records the split
(`split.json`: its settings and a hash of the log), so `evaluate_model` (`metarec evaluate`) can
score the model on that split's test users later, and refuses a log it was not trained on.
"""

from __future__ import annotations

import logging
from pathlib import Path

from metarec.bench.evaluate import VAL_SAMPLE, evaluate_episodes, fit_data, make_validator
from metarec.bench.stats import mean_ci
from metarec.core.config import from_dict, save_json, to_dict
from metarec.core.errors import CheckpointError, ConfigError
from metarec.data import SplitConfig, make_split
from metarec.data.interactions import InteractionData
from metarec.encoders import EncoderConfig
from metarec.meta.checkpoint import load_json, require
from metarec.meta.learners import MetaConfig
from metarec.meta.trainer import TrainConfig
from metarec.methods.neural import MetaRecMethod, score_users

log = logging.getLogger(__name__)


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
    # first: a device or option that cannot work is refused before anything is written to `out`
    method = MetaRecMethod(seed=seed, meta=meta, train=train, encoder=encoder,
                           out=str(out) if out is not None else None, resume=resume, device=device)
    cfg = SplitConfig(seed=seed, mode="time" if data.has_timestamps else "random")
    split = make_split(data, cfg)
    validator = make_validator(split, k=val_shots, max_users=max_val_users)
    log.info("%s: %d warm users to train on, %d validation users scored at K = %d (%s split)", data.name,
             len(split.warm_users), getattr(validator, "n_users", len(split.val_users)), val_shots, cfg.mode)
    if out is not None:
        record = {"split": to_dict(cfg), "data": data.fingerprint(), "val_shots": val_shots}
        _check_resumable(Path(out), record, resume)
        if resume and (Path(out) / "trainer.json").is_file():
            step = load_json(Path(out) / "trainer.json").get("step")
            log.info("%s holds an unfinished run: it goes on from step %s once the catalog side and the start "
                     "are rebuilt (--restart starts afresh)", out, step)
        Path(out).mkdir(parents=True, exist_ok=True)
        save_json(Path(out) / "split.json", record)
    method.fit(fit_data(split), validator,
               item_ids=data.item_ids.tolist(), titles=data.titles(range(data.n_items)))
    if out is not None and method.trainer.history:
        from metarec.bench.plots import plot_training

        t = method.trainer
        plot_training(t.history, t.best_step, Path(out) / "training.png",
                      title=f"{data.name}: meta-training (kept step {t.best_step}, validation {t.best:.4f})",
                      val_label=f"validation NDCG@10 (K = {val_shots})")
    return method


def _check_resumable(out: Path, record: dict, resume: bool) -> None:
    """Refuse to go on with a run in `out` made on another log, split or validation K: its best score
    and kept model were chosen under those, and would be mixed with this run's."""
    if not resume or not (out / "trainer.json").is_file() or not (out / "split.json").is_file():
        return
    old = load_json(out / "split.json")
    differ = [k for k in record if old.get(k) != record[k]]  # every split.json records all three
    if differ:
        raise ConfigError(f"{out}: an unfinished run there was made with other {', '.join(differ)} "
                          f"({', '.join(f'{k}={old.get(k)!r}' for k in differ)}); "
                          "run with the same settings to go on, or with --restart to start afresh")


SUMMARY = ("ndcg@10", "recall@10", "precision@10", "map@10", "hit@10", "ndcg@20", "recall@20")


def evaluate_model(model: str | Path, data: InteractionData, shots=(1, 3, 5, 10), *, which: str = "test",
                   device: str = "cpu") -> list[dict]:
    """A folder written by `meta_train`, scored on the new users of the split it was trained with
    (`which`: "test", or "val") at each K, the protocol's way (full catalog, support excluded).

    Returns one row per K: users, and the mean over users with its 95% t-interval of each metric.
    Refuses `data` that is not the log the model was trained on (another log's "test users" may be
    the model's training users), and a folder without `split.json`."""
    from metarec.meta.recommender import MetaRecommender

    path = Path(model)
    if not (path / "split.json").is_file():
        raise CheckpointError(f"{path}: no split.json; evaluate needs the split the model was trained with "
                              "(written by meta_train / metarec meta-train)")
    rec_split = require(load_json(path / "split.json"), path / "split.json", "data", "split")
    trained, given = rec_split["data"], data.fingerprint()
    if trained != given:
        raise ConfigError(f"{path} was trained on {trained['name']} ({trained['n_users']} users, "
                          f"{trained['n_items']} items, hash {trained['hash'][:12]}), not on these interactions "
                          f"({given['name']}, {given['n_users']} users, {given['n_items']} items, hash "
                          f"{given['hash'][:12]}): its held-out users would not be held out")
    if which not in ("test", "val"):
        raise ConfigError(f"which must be 'test' or 'val', got {which!r}")
    split = make_split(data, from_dict(SplitConfig, rec_split["split"], where="split.json split"))
    rec = MetaRecommender.load(path, device=device)
    encoder = from_dict(EncoderConfig, rec.info.encoder) if rec.info.encoder else None
    rows = []
    for k in shots:
        ep = split.episodes(which, int(k))
        row: dict = {"k": int(k), "users": len(ep)}
        if len(ep):
            per_user = evaluate_episodes(lambda b: score_users(rec, b, encoder), split, ep, {"all": None})[0]["all"]
            for m in SUMMARY:
                row[m], row[f"{m} ci"] = mean_ci(per_user[m])
        rows.append(row)
    return rows
