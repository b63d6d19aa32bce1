"""`metarec` and `pooled-finetune`: the library's model (`metarec.meta.train.MetaRec`) as benchmark
methods. `pooled-finetune` is the same network and losses trained on pooled warm-user tasks without
an inner loop, then fine-tuned on each new user's support set with metarec's step budget and rate:
the control that shows what meta-learning itself adds."""

from __future__ import annotations

import numpy as np

from metarec.data.protocol import FitData, SupportBatch, Validator
from metarec.encoders import EncoderConfig, TemplateConfig
from metarec.encoders.adapters import AdapterConfig
from metarec.meta.learners import MetaConfig
from metarec.meta.recommender import MetaRecommender
from metarec.meta.start import StartSearch
from metarec.meta.train import DEFAULT_META, FitLimits, MetaRec
from metarec.meta.trainer import MetaTrainer, TrainConfig
from metarec.methods.base import Method
from metarec.methods.registry import register
from metarec.models.retrieval import RetrievalConfig
from metarec.models.scoring import ScoringConfig


@register
class MetaRecMethod(Method):
    """The meta-learned scoring head over text + collaborative side features (metarec's default)."""

    name = "metarec"
    runs_on_device = True
    default_meta = DEFAULT_META
    default_train = TrainConfig()

    def __init__(self, seed: int = 0, head: ScoringConfig | None = None, meta: MetaConfig | None = None,
                 train: TrainConfig | None = None, encoder: EncoderConfig | None = None,
                 out: str | None = None, resume: bool = True, device: str = "cpu",
                 start: StartSearch | None = None, limits: FitLimits | None = None,
                 init_from: str | None = None, retrieval: str = "off",
                 adapters: AdapterConfig | bool | None = None, template: TemplateConfig | None = None) -> None:
        """The arguments of `MetaRec`; `meta` and `train` default to this method's. `retrieval`: how
        test users are scored, "off" (the whole catalog, the default here), "auto" or "on" (candidate
        retrieval, models.retrieval). `adapters`: True for the default LoRA adapters."""
        super().__init__(seed)
        adapters = AdapterConfig() if adapters is True else (adapters or None)
        self.model = MetaRec(seed=seed, head=head, meta=meta or self.default_meta, train=train or self.default_train,
                             encoder=encoder, out=out, resume=resume, device=device, start=start, limits=limits,
                             init_from=init_from, retrieval=RetrievalConfig(mode=retrieval), adapters=adapters,
                             template=template)

    def fit(self, data: FitData, validator: Validator | None = None, *, item_ids=None,
            titles=None) -> "MetaRecMethod":
        self.model.fit(data, validator, item_ids=item_ids, titles=titles)
        return self

    def score(self, batch: SupportBatch) -> np.ndarray:
        return self.model.score(batch)

    def describe(self) -> dict:
        return self.model.describe()

    @property
    def rec(self) -> MetaRecommender:
        return self.model.rec

    @property
    def trainer(self) -> MetaTrainer:
        return self.model.trainer

    @property
    def meta(self) -> MetaConfig:
        return self.model.meta

    @property
    def prior(self) -> dict | None:
        return self.model.prior


@register
class PooledFinetune(MetaRecMethod):
    """The same network trained on pooled warm-user tasks without an inner loop, then fine-tuned on
    each new user's support set with the same step budget and learning rate as metarec's inner loop."""

    name = "pooled-finetune"
    default_train = TrainConfig(meta=False)
