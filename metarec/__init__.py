"""metarec: few-shot recommendation for new users by MAML over language-model text embeddings.

The front door:

    from metarec import load_dataset, split, meta_train, MetaRecommender, run_benchmark

    data = load_dataset("csv", "my_log/")               # or "ml-100k", ...
    model = meta_train(data, out="models/mine")         # every choice made on validation users
    user = MetaRecommender.load("models/mine").adapt([50, 181], ratings=[5, 4])
    ids, scores = user.recommend(k=10)

Names are imported on first use, so `import metarec` stays light (no torch until a model is needed).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that owns it
_EXPORTS = {
    "load_dataset": "metarec.data.loaders",
    "CsvConfig": "metarec.data.loaders",
    "InteractionData": "metarec.data.interactions",
    "split": "metarec.data.splits",
    "SplitConfig": "metarec.data.splits",
    "ColdStartSplit": "metarec.data.splits",
    "EncoderConfig": "metarec.encoders.hf",
    "TemplateConfig": "metarec.encoders.templates",
    "ScoringConfig": "metarec.models.scoring",
    "RetrievalConfig": "metarec.models.retrieval",
    "MetaConfig": "metarec.meta.learners",
    "TrainConfig": "metarec.meta.trainer",
    "StartSearch": "metarec.meta.start",
    "meta_train": "metarec.meta.train",
    "MetaRec": "metarec.meta.train",
    "MetaRecommender": "metarec.meta.recommender",
    "AdaptedUser": "metarec.meta.user",
    "run_benchmark": "metarec.bench.runner",
    "BenchmarkConfig": "metarec.bench.runner",
    "evaluate_model": "metarec.bench.evaluate",
}
__all__ = [  # the same names as _EXPORTS (a test checks), spelled out for tools that read them statically
    "__version__", "load_dataset", "CsvConfig", "InteractionData", "split", "SplitConfig", "ColdStartSplit",
    "EncoderConfig", "TemplateConfig", "ScoringConfig", "RetrievalConfig", "MetaConfig", "TrainConfig", "StartSearch",
    "meta_train", "MetaRec", "MetaRecommender", "AdaptedUser", "run_benchmark", "BenchmarkConfig", "evaluate_model",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports on first use
    from metarec.bench.evaluate import evaluate_model
    from metarec.bench.runner import BenchmarkConfig, run_benchmark
    from metarec.data.interactions import InteractionData
    from metarec.data.loaders import CsvConfig, load_dataset
    from metarec.data.splits import ColdStartSplit, SplitConfig, split
    from metarec.encoders.hf import EncoderConfig
    from metarec.encoders.templates import TemplateConfig
    from metarec.meta.learners import MetaConfig
    from metarec.meta.recommender import MetaRecommender
    from metarec.meta.start import StartSearch
    from metarec.models.retrieval import RetrievalConfig
    from metarec.meta.train import MetaRec, meta_train
    from metarec.meta.trainer import TrainConfig
    from metarec.meta.user import AdaptedUser
    from metarec.models.scoring import ScoringConfig


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'metarec' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
