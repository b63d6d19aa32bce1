"""Cross-domain transfer: a model meta-trained on one log starts a fit on another (its projections and
head carry over, its item-id table does not), and a log can be cut to a few warm users."""

import numpy as np
import pytest
import torch

from metarec.core.errors import ConfigError
from metarec.data import load_dataset, make_split
from metarec.data.protocol import fit_data, keep_warm_users
from metarec.encoders import EncoderConfig
from metarec.meta.checkpoint import load_tensors
from metarec.meta.train import MetaRec, transfer_weights
from metarec.meta.trainer import TrainConfig
from metarec.models.scoring import ScoringConfig, ScoringModel
from tests.fixtures import write_communities


def test_transfer_copies_everything_but_the_item_table(served, tiny_models, tmp_path):
    source, _ = served
    data = load_dataset("ml-100k", write_communities(tmp_path / "other", n_users=60))  # another catalog (40 items)
    src = {k[6:]: v for k, v in load_tensors(source / "model.safetensors").items() if k.startswith("model.")}
    model = ScoringModel(ScoringConfig(), src["body.w_text"].shape[0], data.n_items, generator=torch.Generator().manual_seed(1))
    before = model.state_dict()["shared.id_emb"].clone()
    copied = transfer_weights(model, source)
    assert "shared.id_emb" not in copied and {"body.w_text", "head.w1", "head.w_feat"} <= set(copied)
    for name in copied:
        assert torch.equal(model.state_dict()[name], src[name]), name
    assert torch.equal(model.state_dict()["shared.id_emb"], before)  # the new catalog's own, untouched
    with pytest.raises(ConfigError, match="same network shape"):
        transfer_weights(ScoringModel(ScoringConfig(hidden=8), src["body.w_text"].shape[0], 5), source)
    with pytest.raises(ConfigError, match="same encoder"):
        transfer_weights(ScoringModel(ScoringConfig(), 7, 5), source)
    # a whole fit from the transferred start, on the other log
    split = make_split(data)
    m = MetaRec(seed=0, encoder=EncoderConfig(model=tiny_models["bert"]), init_from=source,
                train=TrainConfig(steps=0, meta_batch=4, n_query=5, n_neg=10, n_inner_neg=5))
    m.fit(fit_data(split))
    assert torch.equal(m.rec.model.state_dict()["head.w1"], src["head.w1"])  # no steps, no search: as transferred


def test_keep_warm_users_cuts_every_view_of_the_log(tiny_ml):
    fd = fit_data(make_split(tiny_ml))
    few = keep_warm_users(fd, 5, seed=3)
    assert len(few.warm_users) == 5 and set(few.warm_users) <= set(fd.warm_users)
    kept = np.isin(np.arange(fd.matrix.shape[0]), few.warm_users)
    assert (np.asarray(few.matrix.sum(axis=1)).ravel()[~kept] == 0).all()
    np.testing.assert_array_equal(few.matrix[few.warm_users].toarray(), fd.matrix[few.warm_users].toarray())
    pos = [list(fd.warm_users).index(u) for u in few.warm_users]
    assert all(np.array_equal(a[0], fd.sequences[p][0]) for a, p in zip(few.sequences, pos))
    assert few.users.loc[~kept, "age"].isna().all() and keep_warm_users(fd, 10_000) is fd
    np.testing.assert_array_equal(keep_warm_users(fd, 5, seed=3).warm_users, few.warm_users)  # seeded
