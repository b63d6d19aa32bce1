"""A checkpoint folder that was edited, cut short or written by something else is refused with the
file and what is wrong in it, never with a bare KeyError deep inside loading."""

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from metarec.core.errors import CheckpointError
from metarec.meta.recommender import MetaRecommender


@pytest.fixture()
def model(served, tmp_path):
    """A private copy of the trained tiny model's folder, to damage."""
    return shutil.copytree(served[0], tmp_path / "m")


def _edit_json(path, edit) -> None:
    obj = json.loads(path.read_text())
    path.write_text(json.dumps(edit(obj)))


def _drop(obj: dict, key: str) -> dict:
    return {k: v for k, v in obj.items() if k != key}


def test_an_intact_copy_loads_and_scores_as_the_original(served, model):
    a, b = MetaRecommender.load(served[0]), MetaRecommender.load(model)
    support = np.array([[0, 3, 7]])
    np.testing.assert_array_equal(a.score_batch(support), b.score_batch(support))


def test_damaged_json_files_name_the_file_and_the_fault(model):
    cfg = model / "config.json"
    text = cfg.read_text()
    cfg.write_text('{\n  "format_version": 3,\n  "head": ')
    with pytest.raises(CheckpointError, match=r"config.json: invalid JSON at line 3"):
        MetaRecommender.load(model)
    cfg.write_text("[1, 2]")
    with pytest.raises(CheckpointError, match=r"config.json: expected a JSON object, found list"):
        MetaRecommender.load(model)
    cfg.write_text(text)
    _edit_json(cfg, lambda o: _drop(o, "n_items"))
    with pytest.raises(CheckpointError, match=r"config.json: no 'n_items' in it"):
        MetaRecommender.load(model)
    cfg.write_text(text)
    _edit_json(model / "items.json", lambda o: {**o, "item_ids": o["item_ids"][:-1]})
    with pytest.raises(CheckpointError, match=r"items.json lists 42 item ids, config.json says 43"):
        MetaRecommender.load(model)
    (model / "items.json").unlink()
    with pytest.raises(CheckpointError, match=r"items.json: missing"):
        MetaRecommender.load(model)
    with pytest.raises(CheckpointError, match=r"absent: no such model folder"):
        MetaRecommender.load(model / "absent")


def test_damaged_tensor_files_name_the_file_and_the_fault(model):
    side = model / "side.safetensors"
    tensors = load_file(side)
    save_file(_drop(tensors, "cooc.data"), side)
    with pytest.raises(CheckpointError, match=r"side.safetensors: no 'cooc.data' in it"):
        MetaRecommender.load(model)
    save_file({**tensors, "text": tensors["text"][:-1]}, side)
    with pytest.raises(CheckpointError, match=r"side.safetensors does not fit config.json: .* 42, 43 and 43 items"):
        MetaRecommender.load(model)
    save_file(tensors, side)
    weights = model / "model.safetensors"
    state = load_file(weights)
    name = next(k for k in state if k.startswith("model."))
    save_file({**state, name: np.zeros((3, 1), state[name].dtype)}, weights)
    with pytest.raises(CheckpointError, match=r"model.safetensors does not fit config.json"):
        MetaRecommender.load(model)
    weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")  # a header that says nothing, then nothing
    with pytest.raises(CheckpointError, match=r"model.safetensors"):
        MetaRecommender.load(model)


def test_a_damaged_training_state_stops_the_resume_with_the_file_named(served, model, tiny_models):
    from metarec.data.protocol import fit_data, make_validator
    from metarec.data import make_split
    from metarec.encoders import EncoderConfig
    from metarec.meta.trainer import TrainConfig
    from metarec.methods.metarec import MetaRecMethod

    _edit_json(model / "trainer.json", lambda o: _drop(o, "step"))
    split = make_split(served[1])
    method = MetaRecMethod(seed=0, out=str(model), encoder=EncoderConfig(model=tiny_models["bert"]),
                           train=TrainConfig(steps=5, meta_batch=4, n_query=5, n_neg=10, n_inner_neg=5, eval_every=5))
    with pytest.raises(CheckpointError, match=r"trainer.json: no 'step' in it"):
        method.fit(fit_data(split), make_validator(split, k=2))


def test_a_model_saved_before_k_conditioning_loads_with_one_start(served, model):
    import torch

    _edit_json(model / "config.json", lambda c: {**c, "head": _drop(_drop(c["head"], "k_anchors"), "k_inner_lr")})
    t = load_file(model / "model.safetensors")
    save_file({k: v for k, v in t.items() if not k.startswith("model.cond.")}, model / "model.safetensors")
    old, now = MetaRecommender.load(model), MetaRecommender.load(served[0])
    assert old.model.cfg.k_anchors is None and not any(n.startswith("cond.") for n in old.model.params())
    with torch.no_grad():
        for p in now.model.cond.parameters():
            p.zero_()  # the same network with one start and one inner rate for every K
    support = np.array([[0, 3, 7]])
    np.testing.assert_allclose(old.score_batch(support), now.score_batch(support), rtol=1e-6, atol=1e-6)
