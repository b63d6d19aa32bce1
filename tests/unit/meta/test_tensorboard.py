"""Optional TensorBoard logging: what the trainer writes is what its history says, read back with
TensorBoard's own event reader; without the package the option is refused before any work."""

import importlib.util

import numpy as np
import pytest

from metarec.data.protocol import fit_data, make_validator
from metarec.core.errors import ConfigError
from metarec.data import make_split
from metarec.encoders import EncoderConfig
from metarec.meta.trainer import TrainConfig
from metarec.methods.metarec import MetaRecMethod


def test_tensorboard_holds_every_steps_loss_and_each_validation(tiny_ml, tiny_models, tmp_path):
    pytest.importorskip("tensorboard")  # a dev install has it (make install: the tensorboard extra)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = tmp_path / "tb"
    train = TrainConfig(steps=10, meta_batch=4, n_query=5, n_neg=10, n_inner_neg=5, eval_every=5, patience=100,
                        tensorboard=str(logs))
    m = MetaRecMethod(seed=0, train=train, encoder=EncoderConfig(model=tiny_models["bert"]))
    split = make_split(tiny_ml)
    m.fit(fit_data(split), make_validator(split, k=2))
    acc = EventAccumulator(str(logs))
    acc.Reload()
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == list(range(1, 11))
    evals = [h for h in m.trainer.history if h["step"] > 0]
    assert [h["step"] for h in evals] == [5, 10]
    for h in evals:  # the history's loss is the mean of the steps since the previous evaluation
        window = [e.value for e in loss if h["step"] - 5 < e.step <= h["step"]]
        assert np.mean(window) == pytest.approx(h["loss"], rel=1e-6)
    val = acc.Scalars("val/ndcg@10")
    assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in val] == [(h["step"], h["val"]) for h in evals]


def test_tensorboard_without_the_package_is_refused_up_front(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'metarec\[tensorboard\]'"):
        TrainConfig(tensorboard=str(tmp_path))
    TrainConfig()  # no logging asked for: nothing needed
