"""The HTTP app answers as the Python API does, and turns bad input into 422s with the reason."""


import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metarec.core.errors import ConfigError
from metarec.meta.recommender import MetaRecommender
from metarec.serve.app import ServeLimits, create_app
from tests.fixtures import run_cli


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
    scoring = {key: v for key, v in body.items() if key != "k"}  # /score takes no k: an unknown field is a 422
    assert client.post("/score", json={**body, "items": ids[:2]}).status_code == 422
    s = client.post("/score", json={**scoring, "items": ids[:2]}).json()["scores"]
    np.testing.assert_allclose([s[str(i)] for i in ids[:2]], ref.score(ids[:2]), rtol=1e-6)
    bad = client.post("/score", json={**scoring, "items": [424242]})
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
    r = run_cli(["serve", "--model", tmp_path], check=False)
    assert r.exit_code == 2 and "no config.json here" in " ".join(r.stderr.split())


def test_the_cli_refuses_a_damaged_model_before_serving(served, tmp_path):
    import shutil

    model = shutil.copytree(served[0], tmp_path / "m")
    (model / "side.safetensors").write_bytes(b"cut short")
    r = run_cli(["serve", "--model", model, "--port", "1"], check=False)
    assert r.exit_code == 2 and "side.safetensors: not a readable safetensors file" in " ".join(r.stderr.split())
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


def test_new_items_alone_or_mixed_are_served(served):
    """A support set of items nobody interacted with before the cut (the cold-start case itself)
    once crashed on an int64 buffer (issue 31): now a full, finite top k everywhere."""
    model_dir, tiny_ml = served
    client = TestClient(create_app(model_dir))
    rec = MetaRecommender.load(model_dir)
    new = [int(i) for i in tiny_ml.item_ids[~rec.warm]]
    assert new == [41, 42, 43]
    for support in ([41], [41, 42, 43], [41, 1, 2]):
        body = {"support": [{"item_id": i, "rating": 4} for i in support], "k": 5}
        got = client.post("/recommend", json=body)
        assert got.status_code == 200, got.text
        rows = got.json()["recommendations"]
        ref_ids, ref_scores = rec.adapt(support, ratings=[4] * len(support)).recommend(5)
        assert [r["item_id"] for r in rows] == ref_ids and len(ref_ids) == 5
        assert np.isfinite(ref_scores).all() and not set(ref_ids) & set(support)
        scored = client.post("/score", json={"support": body["support"], "items": [42, 7]})
        assert scored.status_code == 200 and len(scored.json()["scores"]) == 2
    batch = client.post("/recommend/batch", json={"users": [
        {"user_id": "a", "support": [{"item_id": 41}]}, {"user_id": "b", "support": [{"item_id": 3}]}], "k": 4})
    assert batch.status_code == 200 and [len(u["recommendations"]) for u in batch.json()["users"]] == [4, 4]


@pytest.mark.parametrize("body, reason", [
    ({"support": [{"item_id": True}]}, "item_id"),  # JSON true is no item id (it was read as item 1)
    ({"support": [{"item_id": 1, "rating": "5"}]}, "rating"),
    ({"support": [{"item_id": 1}], "k": "3"}, "k"),
    ({"support": [{"item_id": 1}], "exlcude": [2]}, "exlcude"),  # a misspelt field is not ignored
    ({"profile": "x" * 5_001}, "5000 characters"),
    ({"support": [{"item_id": 1 + n % 40} for n in range(1_001)]}, "1000 items"),
])
def test_wrong_types_and_limits_are_422s(served, body, reason):
    r = TestClient(create_app(served[0])).post("/recommend", json=body)
    assert r.status_code == 422 and reason in r.text, r.text


def test_score_refuses_an_item_twice_and_big_bodies_are_413s(served):
    client = TestClient(create_app(served[0]))
    r = client.post("/score", json={"items": [1, "1"]})  # one item under two spellings: one key in the answer
    assert r.status_code == 422 and "item '1' is listed twice (as 1 and '1')" in r.json()["detail"]
    small = TestClient(create_app(served[0], limits=ServeLimits(max_request_bytes=200)))
    body = {"support": [{"item_id": i} for i in range(1, 20)]}
    r = small.post("/recommend", json=body)
    assert r.status_code == 413 and "larger than 200 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: the body is counted as it arrives
        yield b'{"support": ['
        for i in range(1, 20):
            yield f'{{"item_id": {i}}}, '.encode()
        yield b'{"item_id": 20}]}'

    r = small.post("/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than 200 bytes" in r.json()["detail"]
    assert small.post("/recommend", json={"k": 2}).status_code == 200


def test_profiles_stay_in_a_bounded_memory_cache(served, tmp_path, monkeypatch):
    monkeypatch.setenv("METAREC_CACHE_DIR", str(tmp_path / "cache"))
    app = create_app(served[0], limits=ServeLimits(profile_cache=2))
    client = TestClient(app)
    for n in range(4):
        assert client.post("/recommend", json={"profile": f"A {20 + n}-year-old reader.", "k": 2}).status_code == 200
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.*"))
    rec = MetaRecommender.load(served[0])
    rec.keep_profiles_in_memory(2)
    one = rec.encode_profiles(["A 22-year-old reader.", "A 23-year-old reader.", "A 22-year-old reader."])
    assert list(rec._profile_lru) == ["A 23-year-old reader.", "A 22-year-old reader."]  # most recent last
    np.testing.assert_array_equal(one[0], one[2])
    rec.encode_profiles(["A 99-year-old reader."])
    assert list(rec._profile_lru) == ["A 22-year-old reader.", "A 99-year-old reader."]


def test_docs_are_served_offline(served):
    client = TestClient(create_app(served[0]))
    page = client.get("/docs")
    assert page.status_code == 200 and "/docs-static/swagger-ui-bundle.js" in page.text and "cdn" not in page.text
    js = client.get("/docs-static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert client.get("/docs-static/swagger-ui.css").status_code == 200
    assert client.get("/redoc").status_code == 404  # ReDoc would load its script from a CDN


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_valid_support_gives_finite_scores_and_a_full_top_k(served, data):
    """Warm items, new items or both; K = 0 up to the whole catalog; with or without ratings and a
    profile: every score is finite and the top k is full (k capped by what is left to recommend)."""
    model_dir, tiny_ml = served
    rec = _loaded(model_dir)
    ids = [int(i) for i in tiny_ml.item_ids]
    support = data.draw(st.lists(st.sampled_from(ids), unique=True, max_size=min(50, len(ids))))
    ratings = data.draw(st.one_of(st.none(), st.lists(st.one_of(st.floats(1, 5), st.just(float("nan"))),
                                                          min_size=len(support), max_size=len(support))))
    profile = data.draw(st.one_of(st.none(), st.sampled_from(["", "A 30-year-old female writer.", "é" * 300])))
    k = data.draw(st.integers(1, 60))
    user = rec.adapt(support, ratings=ratings, profile=profile)
    assert user.scores.shape == (len(ids),) and np.isfinite(user.scores).all()
    top, scores = user.recommend(k)
    assert len(top) == min(k, len(ids) - len(support)) and not set(top) & set(support)
    assert np.isfinite(scores).all() and np.all(np.diff(scores) <= 0)


_LOADED: dict = {}


def _loaded(model_dir) -> MetaRecommender:
    """One loaded model per folder for the property test's many examples."""
    if model_dir not in _LOADED:
        _LOADED[model_dir] = MetaRecommender.load(model_dir)
    return _LOADED[model_dir]
