"""Shared fixtures: where the real data lives, and tiny generated datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests on a fixed sequence of examples, so a red run is reproducible; a
# developer's run explores new ones each time
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("METAREC_DATA_DIR", REPO.parent / "shared" / "data"))
ML100K = Path(os.environ.get("METAREC_ML100K", DATA / "ml-100k"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never write to the user's cache from tests; never download."""
    monkeypatch.setenv("METAREC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    if not (ML100K / "u.data").exists():
        # in CI the shared data must be there: a missing copy fails the run instead of skipping
        # the integration tests unseen
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"ML-100K not found at {ML100K} (set METAREC_ML100K)")
    return ML100K


@pytest.fixture(scope="session")
def ml100k(ml100k_dir):
    from metarec.data import load_dataset

    return load_dataset("ml-100k", ml100k_dir)


@pytest.fixture(scope="session")
def ml100k_split(ml100k):
    from metarec.data import make_split

    return make_split(ml100k)


@pytest.fixture()
def tiny_ml(tmp_path):
    from metarec.data import load_dataset
    from tests.fixtures import write_ml100k

    return load_dataset("ml-100k", write_ml100k(tmp_path / "ml-100k"))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """A tiny randomly initialised BERT and GPT-2 (with MiniLM's tokenizer) saved as local folders."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel, GPT2Config, GPT2Model

    from metarec.encoders.hf import default_model_path

    root = tmp_path_factory.mktemp("tiny_models")
    tok = AutoTokenizer.from_pretrained(default_model_path())
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=64, max_position_embeddings=128))
    bert.save_pretrained(root / "bert")
    tok.save_pretrained(root / "bert")
    gpt = GPT2Model(GPT2Config(vocab_size=tok.vocab_size, n_positions=128, n_embd=32, n_layer=2, n_head=2))
    gpt.config.architectures = ["GPT2LMHeadModel"]
    gpt.save_pretrained(root / "gpt2")
    tok.save_pretrained(root / "gpt2")
    return {"bert": str(root / "bert"), "gpt2": str(root / "gpt2")}


@pytest.fixture(scope="session")
def served(tiny_models, tmp_path_factory):
    """(model folder, its dataset): a model trained a few steps on the tiny ML-100K fixture, for the
    tests of what a trained model serves (HTTP app, batch recommendations). Items 41-43 are in the
    catalog but were never rated: new items, which a user's support set may hold."""
    from metarec.data.protocol import fit_data, make_validator
    from metarec.data import load_dataset, make_split
    from metarec.encoders import EncoderConfig
    from metarec.meta.trainer import TrainConfig
    from metarec.methods.metarec import MetaRecMethod
    from tests.fixtures import write_ml100k

    root = tmp_path_factory.mktemp("served")
    tiny_ml = load_dataset("ml-100k", write_ml100k(root / "ml-100k", unrated=3))
    out = root / "m"
    split = make_split(tiny_ml)
    MetaRecMethod(seed=0, out=str(out), encoder=EncoderConfig(model=tiny_models["bert"]),
                  train=TrainConfig(steps=5, meta_batch=4, n_query=5, n_neg=10, n_inner_neg=5, eval_every=5)
                  ).fit(fit_data(split), make_validator(split, k=2), item_ids=tiny_ml.item_ids.tolist(),
                        titles=tiny_ml.titles(range(tiny_ml.n_items)))
    return out, tiny_ml
