"""The HTTP app answers as the Python API does, and turns bad input into 422s with the reason."""

import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient

from metarec.bench.evaluate import fit_data, make_validator
from metarec.core.errors import ConfigError
from metarec.data import make_split
from metarec.encoders import EncoderConfig
from metarec.meta.recommender import MetaRecommender
from metarec.meta.trainer import TrainConfig
from metarec.methods.neural import MetaRecMethod
from metarec.serve.app import create_app


@pytest.fixture(scope="module")
def served(tiny_models, tmp_path_factory):
    """(model folder, its dataset): a model trained a few steps on the tiny ML-100K fixture."""
    from metarec.data import load_dataset
    from tests.fixtures import write_ml100k

    root = tmp_path_factory.mktemp("serve")
    tiny_ml = load_dataset("ml-100k", write_ml100k(root / "ml-100k"))
    out = root / "m"
    split = make_split(tiny_ml)
    MetaRecMethod(seed=0, out=str(out), encoder=EncoderConfig(model=tiny_models["bert"]),
                  train=TrainConfig(steps=5, meta_batch=4, n_query=5, n_neg=10, n_inner_neg=5, eval_every=5)
                  ).fit(fit_data(split), make_validator(split, k=2), item_ids=tiny_ml.item_ids.tolist(),
                        titles=tiny_ml.titles(range(tiny_ml.n_items)))
    return out, tiny_ml


def test_recommend_and_score_match_the_python_api(served):
    model_dir, tiny_ml = served
    client = TestClient(create_app(model_dir))
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["items"] == tiny_ml.n_items and h["device"] == "cpu"
    rec = MetaRecommender.load(model_dir)
    support = [int(i) for i in tiny_ml.item_ids[[1, 2, 5]]]
    ref = rec.adapt(support, ratings=[5, 4, float("nan")], profile="A 30-year-old female writer.")
    body = {"support": [{"item_id": support[0], "rating": 5}, {"item_id": support[1], "rating": 4},
                        {"item_id": support[2]}], "profile": "A 30-year-old female writer.", "k": 4}
    got = client.post("/recommend", json=body).json()["recommendations"]
    ids, scores = ref.recommend(4)
    assert [r["item_id"] for r in got] == ids and [r["rank"] for r in got] == [1, 2, 3, 4]
    np.testing.assert_allclose([r["score"] for r in got], scores, rtol=1e-6)
    assert [r["title"] for r in got] == [rec.titles[j] for j in rec.index_of(ids)]
    s = client.post("/score", json={**body, "items": ids[:2]}).json()["scores"]
    np.testing.assert_allclose([s[str(i)] for i in ids[:2]], ref.score(ids[:2]), rtol=1e-6)
    bad = client.post("/score", json={**body, "items": [424242]})
    assert bad.status_code == 422 and "424242" in bad.json()["detail"]
    cold = client.post("/recommend", json={"k": 3}).json()["recommendations"]  # K = 0
    assert [r["item_id"] for r in cold] == rec.adapt([]).recommend(3)[0]


@pytest.mark.parametrize("body, reason", [
    ({"support": [{"item_id": 424242}]}, "424242"),
    ({"support": [{"item_id": 1}, {"item_id": 1}]}, "more than once"),
    ({"support": [{"item_id": 1, "rating": 9}]}, "outside this model's rating scale"),
    ({"k": 0}, "greater than or equal to 1"),
])
def test_bad_input_is_a_422_with_the_reason(served, body, reason):
    r = TestClient(create_app(served[0])).post("/recommend", json=body)
    assert r.status_code == 422 and reason in r.text


def test_no_model_is_a_config_error_and_the_cli_refuses_a_folder_without_one(tmp_path, monkeypatch):
    monkeypatch.delenv("METAREC_MODEL", raising=False)
    with pytest.raises(ConfigError, match="METAREC_MODEL"):
        create_app()
    r = subprocess.run([sys.executable, "-m", "metarec.cli", "serve", "--model", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no config.json here" in " ".join(r.stderr.split())
