"""`meta_train`, the Python entry point behind `metarec meta-train`."""

import dataclasses

import numpy as np
import pytest
import torch

from metarec.data.protocol import fit_data, make_validator, metrics_for, score_episodes
from metarec.bench.stats import mean_ci
from metarec.bench.evaluate import evaluate_model
from metarec.meta.train import meta_train
from metarec.core.errors import CheckpointError, ConfigError
from metarec.data import SplitConfig, make_split
from metarec.encoders import EncoderConfig
from metarec.meta.recommender import MetaRecommender
from metarec.meta.trainer import TrainConfig
from metarec.methods.metarec import MetaRecMethod

TRAIN = TrainConfig(steps=10, meta_batch=4, n_query=5, n_neg=10, n_inner_neg=5, eval_every=5, patience=100)


def test_meta_train_is_the_protocol_fit_and_its_folder_loads(tiny_ml, tiny_models, tmp_path):
    enc = EncoderConfig(model=tiny_models["bert"])
    got = meta_train(tiny_ml, tmp_path / "m", seed=1, train=TRAIN, encoder=enc, val_shots=2)
    # by hand: the seed-1 time split, validation users at K = 2, the same method
    split = make_split(tiny_ml, SplitConfig(seed=1))
    ref = MetaRecMethod(seed=1, train=TRAIN, encoder=enc).fit(fit_data(split), make_validator(split, k=2),
                                                              item_ids=tiny_ml.item_ids.tolist())
    assert got.trainer.history == ref.trainer.history and got.trainer.best_step == ref.trainer.best_step
    for k, v in ref.trainer.model.state_dict().items():
        assert torch.equal(got.trainer.model.state_dict()[k], v), k
    assert (tmp_path / "m" / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the curve, beside the model
    rec = MetaRecommender.load(tmp_path / "m")
    assert rec.titles == tiny_ml.titles(range(tiny_ml.n_items))
    support = tiny_ml.item_ids[[1, 2, 5]].tolist()
    np.testing.assert_allclose(rec.adapt(support).scores, got.rec.adapt(support).scores, rtol=1e-6, atol=1e-6)

    # the folder records its split: evaluate_model scores that split's test users as the runner would
    rows = evaluate_model(tmp_path / "m", tiny_ml, shots=(1, 2))
    for row, k in zip(rows, (1, 2)):
        ep = split.episodes("test", k)
        m = metrics_for(score_episodes(ref.score, split, ep), ep)
        assert row["k"] == k and row["users"] == len(ep) > 0
        for name in ("ndcg@10", "recall@20"):
            mean, half = mean_ci(m[name])
            assert row[name] == pytest.approx(mean, rel=1e-6) and row[f"{name} ci"] == pytest.approx(half, rel=1e-5)
    assert evaluate_model(tmp_path / "m", tiny_ml, shots=(2,), which="val")[0]["users"] == len(split.episodes("val", 2))
    other = dataclasses.replace(tiny_ml, rating=tiny_ml.rating[::-1].copy())  # another log of the same shape
    with pytest.raises(ConfigError, match="its held-out users would not be held out"):
        evaluate_model(tmp_path / "m", other)
    (tmp_path / "m" / "split.json").unlink()
    with pytest.raises(CheckpointError, match="no split.json"):
        evaluate_model(tmp_path / "m", tiny_ml)


def test_meta_train_goes_on_only_under_the_same_split_and_validation_k(tiny_ml, tiny_models, tmp_path, caplog):
    enc = EncoderConfig(model=tiny_models["bert"])
    short = dataclasses.replace(TRAIN, steps=5)
    meta_train(tiny_ml, tmp_path / "m", seed=1, train=short, encoder=enc, val_shots=2)
    before = (tmp_path / "m" / "trainer.json").read_bytes()
    with pytest.raises(ConfigError, match=r"other val_shots \(val_shots=2\).*--restart"):
        meta_train(tiny_ml, tmp_path / "m", seed=1, train=TRAIN, encoder=enc, val_shots=3)
    with pytest.raises(ConfigError, match=r"other split \(split="):
        meta_train(tiny_ml, tmp_path / "m", seed=2, train=TRAIN, encoder=enc, val_shots=2)
    assert (tmp_path / "m" / "trainer.json").read_bytes() == before  # nothing of the run was touched
    with caplog.at_level("INFO", logger="metarec.meta.trainer"):
        got = meta_train(tiny_ml, tmp_path / "m", seed=1, train=TRAIN, encoder=enc, val_shots=2)  # the same: goes on
    assert "resuming from step 5 of" in caplog.text and got.trainer.step == TRAIN.steps
    fresh = meta_train(tiny_ml, tmp_path / "m", seed=1, train=TRAIN, encoder=enc, val_shots=3, resume=False)
    assert fresh.trainer.step == TRAIN.steps
    # a K no validation user reaches is refused before the folder is made
    with pytest.raises(ConfigError, match="no validation user has more than 10000 interactions"):
        meta_train(tiny_ml, tmp_path / "n", seed=1, train=TRAIN, encoder=enc, val_shots=10000)
    assert not (tmp_path / "n").exists()
