"""LoRA adapters of the item-text encoder: they start at the frozen encoder's vectors, only they
train, and a fit with them saves the adapted catalog vectors of the step it kept."""

import json

import numpy as np
import pytest
import torch

from metarec.core.errors import ConfigError
from metarec.encoders import EncoderConfig, TemplateConfig, TextEncoder, item_texts
from metarec.encoders.adapters import AdapterConfig, ItemTextTuner

TEXTS = ["a short title", "a much longer description of a film about a dog and a boat at sea", "x",
         "another title (1995)", "drama | comedy"]


@pytest.mark.parametrize("model", ["bert", "gpt2"])
def test_adapters_start_at_the_frozen_vectors_and_only_they_get_gradients(tiny_models, model):
    enc = TextEncoder(EncoderConfig(model=tiny_models[model], batch_size=2))
    cfg = AdapterConfig(target_modules=("c_attn",)) if model == "gpt2" else AdapterConfig()
    tuner = ItemTextTuner(enc, TEXTS, cfg)
    want = enc.encode(TEXTS, show_progress=False)
    idx = np.array([4, 1, 0])
    got = tuner.embed(idx)
    np.testing.assert_allclose(got.detach().numpy(), want[idx], rtol=1e-5, atol=1e-5)  # LoRA's B starts at 0
    np.testing.assert_allclose(tuner.encode_all(), want, rtol=1e-5, atol=1e-5)
    (got * torch.randn(got.shape, generator=torch.Generator().manual_seed(0))).sum().backward()
    trained = {n for n, p in tuner.named_parameters() if p.grad is not None}
    assert trained and all("lora_" in n for n in trained)
    assert all(p.grad is None for n, p in tuner.model.named_parameters() if "lora_" not in n)
    assert not any("lora_" in n for n, _ in enc.model.named_parameters())  # the frozen encoder is left alone


def test_adapter_config_is_checked():
    for bad in ({"rank": 0}, {"lr": 0.0}, {"items_per_step": 0}, {"dropout": 1.0}):
        with pytest.raises(ConfigError):
            AdapterConfig(**bad)


def test_meta_train_with_adapters_saves_the_adapted_vectors_it_kept(tiny_ml, tiny_models, tmp_path):
    from metarec.meta.recommender import MetaRecommender
    from metarec.meta.train import meta_train
    from metarec.meta.trainer import TrainConfig

    enc = EncoderConfig(model=tiny_models["bert"])
    train = TrainConfig(steps=6, meta_batch=4, n_query=5, n_neg=10, n_inner_neg=5, eval_every=3, keep_best=False)
    m = meta_train(tiny_ml, tmp_path / "m", encoder=enc, adapters=AdapterConfig(lr=5e-2, items_per_step=8), train=train)
    t = m.trainer
    frozen = TextEncoder(enc).encode(item_texts(tiny_ml.items, TemplateConfig()), show_progress=False)
    frozen /= np.linalg.norm(frozen, axis=1, keepdims=True)
    # the catalog's vectors are the adapted encoder's at the kept (last) step, and no longer the frozen ones
    np.testing.assert_allclose(m.rec.side.text, t.tuner.encode_all() / np.linalg.norm(t.tuner.encode_all(), axis=1,
                                                                                     keepdims=True), atol=1e-5)
    assert np.abs(m.rec.side.text - frozen).max() > 1e-3
    assert torch.equal(m.rec.item_text, torch.from_numpy(m.rec.side.text))
    loaded = MetaRecommender.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.side.text, m.rec.side.text)
    assert json.loads((tmp_path / "m" / "config.json").read_text())["info"]["adapters"]["lr"] == 5e-2
    sup = np.array([[1, 2, 3]])
    np.testing.assert_allclose(loaded.score_batch(sup), m.rec.score_batch(sup), rtol=1e-5, atol=1e-5)
