"""The stateful service: users created over HTTP keep their events in SQLite, get the list the Python
API gives for those events, survive a restart, and are written safely under concurrency."""

import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from metarec.meta.recommender import MetaRecommender
from metarec.serve.app import create_app
from metarec.serve.store import UserStore


@pytest.fixture()
def rec(served):
    return MetaRecommender.load(served[0])


def test_a_user_over_http_gets_the_python_list_and_survives_a_restart(served, rec, tmp_path):
    db = tmp_path / "users.sqlite"
    client = TestClient(create_app(served[0], store=db))
    assert client.put("/users/ann", json={"profile": "A 30-year-old female writer."}).status_code == 201
    assert client.put("/users/ann", json={"profile": "A 30-year-old female writer."}).status_code == 200
    events = [{"item_id": 5, "rating": 4, "time": 300}, {"item_id": 2, "rating": 5, "time": 100},
              {"item_id": 41}, {"item_id": 9, "rating": 2, "time": 200}, {"item_id": 5, "rating": 1, "time": 400}]
    assert client.post("/users/ann/events", json={"events": events[:3]}).json()["events"] == 3
    assert client.post("/users/ann/events", json={"events": events[3:]}).json()["events"] == 5
    got = client.get("/users/ann/recommendations", params={"k": 10, "explain": True}).json()["recommendations"]
    # by time (no time: when it arrived, now), an item's newest rating counting: 2 (100), 9 (200),
    # 5 re-rated 1 (400), 41 (now)
    want = rec.adapt([2, 9, 5, 41], ratings=[5, 2, 1, np.nan], profile="A 30-year-old female writer.").ranked(
        10, explain=True)
    assert [g["item_id"] for g in got] == [w["item_id"] for w in want] and len(got) == 10
    np.testing.assert_allclose([g["score"] for g in got], [w["score"] for w in want], rtol=1e-5)
    assert all(g["explanation"]["support"] for g in got)
    seen = client.get("/users/ann/recommendations", params={"k": 43, "exclude_seen": False}).json()
    assert {41, 2, 9, 5} <= {r["item_id"] for r in seen["recommendations"]}
    # a restart: a new process over the same file gives the same list
    again = TestClient(create_app(served[0], store=db))
    after = again.get("/users/ann/recommendations", params={"k": 10, "explain": True}).json()["recommendations"]
    assert after == got
    assert again.delete("/users/ann").status_code == 204
    assert again.get("/users/ann/recommendations").status_code == 404 and again.delete("/users/ann").status_code == 404


def test_bad_events_change_nothing(served):
    client = TestClient(create_app(served[0]))
    client.post("/users/bo/events", json={"events": [{"item_id": 3}]})
    for body, reason in [({"events": [{"item_id": 4}, {"item_id": 424242}]}, "424242"),
                         ({"events": [{"item_id": 4, "rating": 9}]}, "events[0].rating: 9 is outside"),
                         ({"events": [{"item_id": 4, "time": "soon"}]}, "time"),
                         ({"events": []}, "at least 1")]:
        r = client.post("/users/bo/events", json=body)
        assert r.status_code == 422 and reason in r.text, r.text
    rows = client.get("/users/bo/recommendations", params={"k": 43, "exclude_seen": False}).json()["recommendations"]
    assert len(rows) == 43  # only item 3 is stored: nothing of the refused requests got in
    assert client.get("/users/nobody/recommendations").status_code == 404


def test_concurrent_events_are_neither_lost_nor_doubled(served, tmp_path):
    store = UserStore(tmp_path / "u.sqlite")
    client = TestClient(create_app(served[0], store=store))
    errors = []

    def send(t):
        for n in range(5):
            r = client.post("/users/cat/events", json={"events": [{"item_id": 1 + t * 5 + n, "rating": 4}]})
            if r.status_code != 200:
                errors.append(r.text)

    threads = [threading.Thread(target=send, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    user = store.get("cat")
    assert sorted(i for i, _ in user.support) == list(range(1, 41)) and user.version == 40


def test_an_api_key_guards_everything_but_health_and_docs(served):
    client = TestClient(create_app(served[0], api_key="s3cret"))
    assert client.get("/health").status_code == 200 and client.get("/docs").status_code == 200
    assert client.put("/users/x", json={}).status_code == 401
    assert client.post("/recommend", json={"k": 2}).status_code == 401
    assert client.post("/recommend", json={"k": 2}, headers={"X-API-Key": "wrong"}).status_code == 401
    ok = {"X-API-Key": "s3cret"}
    assert client.put("/users/x", json={}, headers=ok).status_code == 201
    assert client.post("/recommend", json={"k": 2}, headers=ok).status_code == 200
    assert client.get("/users").status_code in (404, 405)  # users are never listed


def test_concurrent_requests_are_adapted_in_batches_with_the_scores_of_one_at_a_time(served, rec):
    import threading as th

    from metarec.serve.batching import MicroBatcher

    batcher = MicroBatcher(rec, th.Lock(), max_wait_s=0.05)
    supports = [[1 + u % 40, 1 + (u + 13) % 40, 41] if u % 3 else [1 + u % 40] for u in range(24)]
    got = [None] * len(supports)
    start = th.Barrier(len(supports))

    def run(u):
        start.wait()
        got[u] = batcher.adapt(supports[u], ratings=[4.0] * len(supports[u]))

    threads = [th.Thread(target=run, args=(u,)) for u in range(len(supports))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= batcher.batches < len(supports)  # requests that arrived together shared a pass
    for s, user in zip(supports, got):
        alone = rec.adapt(s, ratings=[4.0] * len(s))
        np.testing.assert_allclose(user.scores, alone.scores, rtol=1e-5, atol=1e-6)
        assert user.recommend(10)[0] == alone.recommend(10)[0]
    with pytest.raises(Exception, match="424242"):
        batcher.adapt([424242])


def test_a_write_that_fails_midway_leaves_the_user_as_before(tmp_path):
    store = UserStore(tmp_path / "u.sqlite")
    store.add_events("dee", [(1, 4.0, None)])
    real = store._db

    class FailsOnVersionBump:  # the events are inserted, then the transaction's last statement fails
        def execute(self, sql, *args):
            if sql.startswith("UPDATE users SET version"):
                raise RuntimeError("power cut")
            return real.execute(sql, *args)

        def executemany(self, sql, rows):
            return real.executemany(sql, rows)

    store._db = FailsOnVersionBump()
    with pytest.raises(RuntimeError, match="power cut"):
        store.add_events("dee", [(2, 5.0, None), (3, 1.0, None)])
    store._db = real
    again = UserStore(tmp_path / "u.sqlite")  # what a restarted server reads
    assert again.get("dee").support == [(1, 4.0)] and again.get("dee").version == 1
