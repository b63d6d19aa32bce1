"""The HTTP app answers as the Python API does, and turns bad input into 422s with the reason."""

import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient

from metarec.core.errors import ConfigError
from metarec.meta.recommender import MetaRecommender
from metarec.serve.app import create_app


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
    some = client.post("/recommend", json={**body, "exclude": ids[:1], "candidates": ids[:3]}).json()
    assert [r["item_id"] for r in some["recommendations"]] == ids[1:3]
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


def test_the_cli_refuses_a_damaged_model_before_serving(served, tmp_path):
    import shutil

    model = shutil.copytree(served[0], tmp_path / "m")
    (model / "side.safetensors").write_bytes(b"cut short")
    r = subprocess.run([sys.executable, "-m", "metarec.cli", "serve", "--model", str(model), "--port", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "side.safetensors: not a readable safetensors file" in " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr


def test_batch_answers_each_user_as_recommend_does(served):
    model_dir, tiny_ml = served
    client = TestClient(create_app(model_dir))
    rec = MetaRecommender.load(model_dir)
    a, b, c = (int(i) for i in tiny_ml.item_ids[[1, 2, 5]])
    users = [{"user_id": "u1", "support": [{"item_id": a, "rating": 5}, {"item_id": b}]},
             {"user_id": 7, "support": [], "profile": "A 30-year-old female writer."},
             {"user_id": "u3", "support": [{"item_id": c, "rating": 2}]},
             {"user_id": "u4"}]  # K = 0, no profile: the meta-learned initialisation
    got = client.post("/recommend/batch", json={"users": users, "k": 3}).json()["users"]
    assert [u["user_id"] for u in got] == ["u1", 7, "u3", "u4"]
    for u, g in zip(users, got):
        single = client.post("/recommend", json={"support": u.get("support", []), "profile": u.get("profile"),
                                                 "k": 3}).json()["recommendations"]
        assert [r["item_id"] for r in g["recommendations"]] == [r["item_id"] for r in single]
        np.testing.assert_allclose([r["score"] for r in g["recommendations"]], [r["score"] for r in single],
                                   rtol=1e-5, atol=1e-6)
    assert [r["item_id"] for r in got[3]["recommendations"]] == rec.adapt([]).recommend(3)[0]
    bad = client.post("/recommend/batch", json={"users": [users[0], {"user_id": "u9", "support": [{"item_id": 424242}]}]})
    assert bad.status_code == 422 and "users[1].support[0]: user 'u9': item id 424242" in bad.json()["detail"]
    twice = client.post("/recommend/batch", json={"users": [users[0], users[0]]})
    assert twice.status_code == 422 and "user 'u1' given twice" in twice.json()["detail"]
