"""`meta_train`, the Python entry point behind `metarec meta-train`."""

import numpy as np
import torch

from metarec.bench.evaluate import fit_data, make_validator
from metarec.bench.train import meta_train
from metarec.data import SplitConfig, make_split
from metarec.encoders import EncoderConfig
from metarec.meta.recommender import MetaRecommender
from metarec.meta.trainer import TrainConfig
from metarec.methods.neural import MetaRecMethod

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
