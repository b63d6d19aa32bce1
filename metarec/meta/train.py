"""Fit metarec's model: the catalog side, the start search, meta-training, a checkpoint folder.

    from metarec import load_dataset, meta_train

    model = meta_train(load_dataset("csv", "my_log/"), out="models/mine")
    print(model.trainer.best, model.trainer.best_step)

`meta_train` takes an interaction log, makes the protocol's split, and fits a `MetaRec` on its
training side with every choice made on validation users; `metarec meta-train` is it behind a command
line. `MetaRec` is the fitting itself, on any `FitData` and validator (the benchmark's `metarec` and
`pooled-finetune` methods wrap it). The folder also records the split (`split.json`: its settings
and a hash of the log), so a model can be scored later on that split's test users and a run resumes
only under the split it began with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from metarec.core.config import save_json, to_dict
from metarec.core.device import resolve_device
from metarec.core.distributed import is_main
from metarec.core.errors import ConfigError
from metarec.data.interactions import InteractionData
from metarec.data.protocol import VAL_SAMPLE, VAL_SHOTS, FitData, SupportBatch, Validator, fit_data, make_validator
from metarec.data.splits import SplitConfig, make_split
from metarec.encoders import EncoderConfig, TemplateConfig, item_embeddings, profile_vectors
from metarec.encoders.adapters import AdapterConfig
from metarec.meta.checkpoint import load_json
from metarec.meta.learners import MetaConfig
from metarec.meta.recommender import MetaRecommender, RecommenderInfo
from metarec.meta.start import StartSearch, search_conditioned_start
from metarec.meta.tasks import MetaData
from metarec.meta.trainer import MetaTrainer, TrainConfig, use_cuda_graphs
from metarec.models.ease import ease_gram, ease_inverse, sweep_lambda
from metarec.models.features import ItemSide
from metarec.models.retrieval import RetrievalConfig
from metarec.models.scoring import ScoringConfig, ScoringModel

log = logging.getLogger(__name__)

# The outer (query) loss is approx-NDCG@10, not the softmax: on validation users it lifts ML-100K at
# K = 3, 5 and 10 and leaves the synthetic logs level (experiments/meta-objective). The softmax
# rewards pulling deep-tail positives up; approx-NDCG targets the top 10. The inner loop keeps the
# softmax over the support set.
DEFAULT_META = MetaConfig(outer_loss="approx_ndcg")


@dataclass(frozen=True, kw_only=True)
class FitLimits:
    """Memory bounds of a fit.

    Attributes:
        validation_cache_bytes: the validation users' scoring inputs kept while fitting
            (`MetaRecommender.input_cache`): 1 GiB holds 1,000 users x 30,000 items x 6 features;
            past it, the rest are rebuilt each time.
        ease_max_items: the ease feature keeps a dense float64 item x item inverse in memory and in
            the checkpoint (0.8 GB at 10,000 items); above this many items it is left out (logged).
    """

    validation_cache_bytes: int = 1 << 30
    ease_max_items: int = 10_000


class MetaRec:
    """metarec's model, fitted on the training side of a split with choices made on validation users.

    After `fit`: `rec` (the MetaRecommender), `trainer` (its MetaTrainer: best score and step,
    history), `meta` (the inner loop chosen), `prior` (the start search's report) and `start_val`.
    """

    def __init__(self, seed: int = 0, head: ScoringConfig | None = None, meta: MetaConfig | None = None,
                 train: TrainConfig | None = None, encoder: EncoderConfig | None = None,
                 out: str | None = None, resume: bool = True, device: str = "cpu",
                 start: StartSearch | None = None, limits: FitLimits | None = None,
                 init_from: str | Path | None = None, retrieval: RetrievalConfig | None = None,
                 adapters: AdapterConfig | None = None, template: TemplateConfig | None = None) -> None:
        """`device`: where the network meta-trains and scores ("cpu", "cuda", "auto"...); the CPU by
        default, where the same seed gives the same numbers bit for bit (CUDA's index backward
        accumulates in a nondeterministic order). `out`: a checkpoint folder (an unfinished run there
        resumes when `resume`). `init_from`: a model folder meta-trained on another log (same encoder,
        same network shape) whose text and profile projections and head start this fit (see
        `transfer_weights`); the item-id table and the catalog features are this log's. `retrieval`:
        how the fitted model scores (`MetaRecommender.set_retrieval`; the default above 100,000 items
        is candidate retrieval); validation during the fit always scores the whole catalog.
        `adapters`: train LoRA adapters of the text encoder with the network (`MetaTrainer`'s
        `tuner`); the saved catalog vectors are then the adapted encoder's at the kept step.
        `template`: which item fields make the catalog's text (default: every field the data has)."""
        self.seed = seed
        self.head = head or ScoringConfig()
        self.meta = meta or DEFAULT_META
        self.train = replace(train or TrainConfig(), seed=seed)
        self.encoder = encoder
        self.out, self.resume, self.device = out, resume, device
        self.start = start or StartSearch()
        self.init_from = None if init_from is None else Path(init_from)
        self.limits = limits or FitLimits()
        self.retrieval = retrieval or RetrievalConfig()
        self.adapters = adapters
        self.template = template or TemplateConfig()
        self.prior: dict | None = None
        self.start_val: float | None = None
        # an unusable device or graph setting fails here, not after the side features are built
        use_cuda_graphs(self.train.cuda_graphs, resolve_device(device), self.meta.backend)

    def fit(self, data: FitData, validator: Validator | None = None, *, item_ids=None, titles=None) -> "MetaRec":
        """Meta-train; with `out` set, checkpoint there (and resume a run found there)."""
        torch.manual_seed(self.seed)
        head = self.head  # the configured network; the fitted one (self.rec.model.cfg) may leave ease out
        if "ease" in head.features and data.n_items > self.limits.ease_max_items:
            log.warning("ease feature left out: the catalog's %d items exceed %d (a dense item x item inverse)",
                        data.n_items, self.limits.ease_max_items)
            head = replace(head, features=tuple(f for f in head.features if f != "ease"))
        lam, p = _ease(data, validator) if "ease" in head.features else (None, None)
        side = ItemSide.build(item_embeddings(data.items, self.encoder, self.template), data.matrix,
                              data.recent if "trend" in head.features else None, ease_lambda=lam, ease_p=p)
        del p
        md = meta_data(data, side, self.encoder)
        model = ScoringModel(head, side.text.shape[1], side.n_items,
                             generator=torch.Generator().manual_seed(self.seed))
        if self.init_from is not None:
            transfer_weights(model, self.init_from)
        info = RecommenderInfo(dataset=data.dataset, rating_min=rating_min(data), rating_max=md.rating_max,
                               explicit=md.explicit, n_inner_neg=self.train.n_inner_neg,
                               encoder=to_dict(self.encoder) if self.encoder else None,
                               adapters=to_dict(self.adapters) if self.adapters else None,
                               template=to_dict(self.template))
        self.rec = MetaRecommender(model, self.meta, side, info, item_ids=item_ids, titles=titles, seed=self.seed,
                                   device=self.device)  # moves the model there
        self.rec.set_retrieval(RetrievalConfig(mode="off"))  # the weights move: every choice scores exactly
        with self.rec.input_cache(self.limits.validation_cache_bytes):  # validators score the same users each time
            self.start_val = None
            if validator is not None:
                choice, validator = search_conditioned_start(self.rec, validator, self.score, self.meta, self.start)
                self.meta, self.prior, self.start_val = choice.meta, choice.report, choice.val_score
            tuner = None
            if self.adapters is not None:
                from metarec.encoders import TextEncoder, item_texts
                from metarec.encoders.adapters import ItemTextTuner

                tuner = ItemTextTuner(TextEncoder(self.encoder or EncoderConfig()),
                                      item_texts(data.items, self.template), self.adapters, seed=self.seed)
            # re-encoded catalog text changes the validation users' features: rebuild them
            self.trainer = MetaTrainer(model, self.rec.item_text, md, self.meta, self.train, tuner=tuner,
                                       on_text=lambda _: self.rec.clear_input_cache())
            if self.meta.backend == "functional":
                self.rec.learner = self.trainer.learner
            if validator is not None:
                self.trainer.evaluate = lambda *_: validator(self.score)
            out = Path(self.out) if self.out else None
            if out is not None:
                resumed = self.resume and self.trainer.resume(out)
                if not resumed and is_main():
                    self.rec.save(out)  # catalog side, config and items first: a crash leaves a usable folder
            # checkpoints (live state + best model) at every evaluation; step 0 is the chosen start,
            # whose validation score the search already has
            self.trainer.fit(out, start_score=self.start_val)
        if out is not None and is_main():
            self.rec.save(out, state=self.trainer.best_state)
        self.rec.set_retrieval(self.retrieval)
        return self

    def score(self, batch: SupportBatch) -> np.ndarray:
        """float32 [U, I]: every catalog item's score for each user of `batch`."""
        return score_users(self.rec, batch, self.encoder)

    def describe(self) -> dict:
        """The fitted settings and what the fit chose, as JSON-able values (for reports)."""
        t = self.trainer
        return {"head": to_dict(self.rec.model.cfg), "meta": to_dict(self.meta), "train": to_dict(self.train),
                "best_step": t.best_step, "best_val_ndcg@10": t.best, "steps_run": t.step,
                "feature_prior": self.prior}


CATALOG_PARAMS = ("shared.id_emb",)  # one row per item of the catalog it was trained on: never transferred


def transfer_weights(model: ScoringModel, source: Path) -> list[str]:
    """Copy into `model` every parameter of the model in folder `source` that carries over to another
    catalog: the text and profile projections and the head (the item-id table is the source
    catalog's and is left as initialised; catalog features are rebuilt from the new log anyway).
    Returns the names copied. A source with another encoder width or network shape is a ConfigError."""
    from metarec.core.errors import CheckpointError
    from metarec.meta.checkpoint import load_tensors

    cfg = load_json(source / "config.json")
    own = model.state_dict()
    text_dim = own["body.w_text"].shape[0]
    if int(cfg.get("text_dim", -1)) != text_dim:
        raise ConfigError(f"{source}: its text vectors have {cfg.get('text_dim')} dimensions, this encoder's "
                          f"{text_dim}: transfer needs the same encoder")
    state = {k[6:]: v for k, v in load_tensors(source / "model.safetensors").items() if k.startswith("model.")}
    copied = []
    for name, value in state.items():
        if name in CATALOG_PARAMS or name not in own:
            continue
        if own[name].shape != value.shape:
            raise ConfigError(f"{source}: parameter {name} is {tuple(value.shape)}, this network's "
                              f"{tuple(own[name].shape)}: transfer needs the same network shape (ScoringConfig)")
        own[name] = value
        copied.append(name)
    if not copied:
        raise CheckpointError(f"{source}/model.safetensors holds no parameter this network has")
    model.load_state_dict(own)
    log.info("transferred %d parameters from %s (%s)", len(copied), source, ", ".join(copied))
    return copied


def _ease(data: FitData, validator: Validator | None) -> tuple[float, np.ndarray]:
    """The ease feature's ridge and inverse P: lambda chosen on validation users as for the EASE
    baseline (it ranges from hundreds to 1e5 across datasets), from the validator's cached sweep when
    the baseline already ran it; 300 without a validator."""
    if validator is None:
        return 300.0, ease_inverse(ease_gram(data.warm_matrix), 300.0)
    sweep, _ = sweep_lambda(data.warm_matrix, validator)
    return float(sweep.lam), sweep.p


def meta_data(fd: FitData, side: ItemSide, encoder: EncoderConfig | None,
              profiles: np.ndarray | None = None) -> MetaData:
    """The warm users' tasks source. `profiles` (float32 [len(fd.users), D], optional) are profile
    vectors computed beforehand; without them the warm users' profile texts are encoded."""
    warm = fd.warm_users
    if profiles is None:
        prof = profile_vectors(fd.users.iloc[warm], encoder)
    elif len(profiles) != len(fd.users):
        raise ConfigError(f"profiles has {len(profiles)} rows, the data has {len(fd.users)} users")
    else:
        prof = np.asarray(profiles, np.float32)[warm]
    if prof.shape[1] == 0:
        prof = np.zeros((len(warm), side.text.shape[1]), np.float32)
    rmax = float(np.nanmax(fd.ratings.data)) if fd.explicit and fd.ratings.nnz else 1.0
    recency = None
    if fd.first_times is not None and len(warm) > 1:
        from scipy.stats import rankdata

        recency = (rankdata(fd.first_times, method="average") - 1) / (len(warm) - 1)
    return MetaData(side=side, sequences=fd.sequences, user_rows=fd.matrix[warm], profiles=prof,
                    rating_max=rmax, explicit=fd.explicit, recency=recency,
                    recent_rows=None if fd.recent is None or side.recent is None else fd.recent[warm])


def rating_min(fd: FitData) -> float:
    """The lowest rating on the training side (0 for implicit feedback): the bottom of the scale a
    fitted model accepts ratings on."""
    r = fd.ratings.data
    return float(np.nanmin(r)) if fd.explicit and np.isfinite(r).any() else 0.0


def score_users(rec: MetaRecommender, batch: SupportBatch, encoder: EncoderConfig | None) -> np.ndarray:
    """float32 [U, I]: a metarec model's scores for a batch of users, with their profile vectors
    (encoded by `encoder`, the model's) when the model reads profiles and the users have any."""
    prof = profile_vectors(batch.users, encoder) if rec.model.cfg.use_profile else None
    if prof is not None and prof.shape[1] == 0:
        prof = None
    return rec.score_batch(batch.support_items, batch.support_ratings, prof)


def meta_train(data: InteractionData, out: str | Path | None = None, *, seed: int = 0,
               meta: MetaConfig | None = None, train: TrainConfig | None = None,
               encoder: EncoderConfig | None = None, device: str = "cpu", resume: bool = True,
               val_shots: int = VAL_SHOTS, max_val_users: int | None = VAL_SAMPLE,
               head: ScoringConfig | None = None, init_from: str | Path | None = None,
               adapters: AdapterConfig | None = None, template: TemplateConfig | None = None) -> MetaRec:
    """Fit metarec on `data` and (with `out`) save it there, with `training.png` (validation NDCG@10
    and training loss against the step); an unfinished run in `out` resumes.

    The split is the protocol's (a time cut when the log has timestamps, else a seeded random user
    split); every choice (the start, early stopping) reads validation users' NDCG@10 at
    K = `val_shots`, and test users are never touched. `train.seed` follows `seed`. `init_from`: start
    from a model meta-trained on another log (cross-domain transfer; see `transfer_weights`).
    `adapters`: also train LoRA adapters of the text encoder (see `MetaRec`); `template`: which item
    fields make the text (`TemplateConfig.with_fields`).
    """
    # first: a device or option that cannot work is refused before anything is written to `out`
    model = MetaRec(seed=seed, head=head, meta=meta, train=train, encoder=encoder,
                    out=str(out) if out is not None else None, resume=resume, device=device, init_from=init_from,
                    adapters=adapters, template=template)
    cfg = SplitConfig(seed=seed, mode="time" if data.has_timestamps else "random")
    split = make_split(data, cfg)
    validator = make_validator(split, k=val_shots, max_users=max_val_users)
    log.info("%s: %d warm users to train on, %d validation users scored at K = %d (%s split)", data.name,
             len(split.warm_users), validator.n_users, val_shots, cfg.mode)
    if out is not None:
        record = {"split": to_dict(cfg), "data": data.fingerprint(), "val_shots": val_shots}
        _check_resumable(Path(out), record, resume)
        if resume and (Path(out) / "trainer.json").is_file():
            step = load_json(Path(out) / "trainer.json").get("step")
            log.info("%s holds an unfinished run: it goes on from step %s once the catalog side and the start "
                     "are rebuilt (--restart starts afresh)", out, step)
        if is_main():
            Path(out).mkdir(parents=True, exist_ok=True)
            save_json(Path(out) / "split.json", record)
    model.fit(fit_data(split), validator, item_ids=data.item_ids.tolist(), titles=data.titles(range(data.n_items)))
    if out is not None and model.trainer.history and is_main():
        from metarec.meta.plots import plot_training

        t = model.trainer
        plot_training(t.history, t.best_step, Path(out) / "training.png",
                      title=f"{data.name}: meta-training (kept step {t.best_step}, validation {t.best:.4f})",
                      val_label=f"validation NDCG@10 (K = {val_shots})")
    return model


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
