"""Evaluation helpers: the validator's fixed user sample, and block-wise scoring that equals one-shot scoring."""

import numpy as np
import pytest

from metarec.bench import evaluate
from metarec.data import protocol
from metarec.data.protocol import make_validator, metrics_for, score_episodes
from metarec.bench.evaluate import evaluate_episodes
from metarec.bench.runner import BenchmarkConfig
from metarec.core.errors import ConfigError
from metarec.data import SplitConfig, make_split


def test_validator_scores_a_fixed_sample_of_validation_users(tiny_ml):
    split = make_split(tiny_ml, SplitConfig(seed=0))
    ep = split.episodes("val", 1)
    assert len(ep) >= 2 and len(set(ep.support_items[:, 0])) == len(ep)
    table = np.random.default_rng(5).normal(size=(tiny_ml.n_items, tiny_ml.n_items))
    seen = []

    def score_fn(batch):  # a fixed score row per user, keyed by the user's (distinct) support item
        seen.append(batch.support_items[:, 0].copy())
        return table[batch.support_items[:, 0]]

    m = len(ep) - 1
    val = make_validator(split, k=1, max_users=m)
    first = val(score_fn)
    sampled = np.concatenate(seen)
    assert len(sampled) == m
    assert val(score_fn) == first  # the same users every call
    # the value is the plain mean NDCG@10 over exactly those users
    sub = ep.take(np.array([int(np.flatnonzero(ep.support_items[:, 0] == s)[0]) for s in sampled]))
    assert first == np.nanmean(metrics_for(score_episodes(score_fn, split, sub), sub, ks=(10,))["ndcg@10"])
    full = np.nanmean(metrics_for(score_episodes(score_fn, split, ep), ep, ks=(10,))["ndcg@10"])
    assert make_validator(split, k=1, max_users=None)(score_fn) == full
    assert make_validator(split, k=1, max_users=len(ep))(score_fn) == full
    # sample(n): the same validator over a fixed n of its users; itself when n covers them all
    val = make_validator(split, k=1, max_users=None)
    assert val.n_users == len(ep) and val.sample(len(ep)) is val
    quick = val.sample(len(ep) - 1)
    seen.clear()
    q = quick(score_fn)
    assert quick.n_users == len(ep) - 1 == len(np.concatenate(seen)) and quick(score_fn) == q
    sub = ep.take(np.array([int(np.flatnonzero(ep.support_items[:, 0] == s)[0]) for s in np.concatenate(seen)]))
    assert q == np.nanmean(metrics_for(score_episodes(score_fn, split, sub), sub, ks=(10,))["ndcg@10"])


def test_evaluate_episodes_in_blocks_equals_scoring_everyone_at_once(tiny_ml, monkeypatch):
    split = make_split(tiny_ml, SplitConfig(seed=1))
    ep = split.episodes("test", 1)
    assert len(ep) >= 3
    table = np.random.default_rng(2).normal(size=(tiny_ml.n_items, tiny_ml.n_items))
    batches = []

    def score_fn(batch):
        batches.append(len(batch))
        return table[batch.support_items[:, 0]]

    masks = {"all": None, "new-items": split.new_items}
    whole = score_episodes(score_fn, split, ep)
    ref = {name: metrics_for(whole, ep, item_mask=mask) for name, mask in masks.items()}
    monkeypatch.setattr(evaluate, "SCORE_CHUNK", 2)
    monkeypatch.setattr(protocol, "SCORE_CHUNK", 2)
    monkeypatch.setattr(evaluate, "EVAL_FLOATS", 1)  # one chunk of 2 users per block
    batches.clear()
    got, seconds = evaluate_episodes(score_fn, split, ep, masks)
    assert batches == [2] * (len(ep) // 2) + [1] * (len(ep) % 2) and seconds >= 0
    assert set(got) == set(ref)
    for name in ref:
        assert set(got[name]) == set(ref[name])
        for metric, vals in ref[name].items():
            np.testing.assert_array_equal(got[name][metric], vals)


def test_float32_scores_stay_float32_and_rank_as_their_float64_images(tiny_ml, monkeypatch):
    """A method's float32 scores are kept as float32 (half the memory of a float64 copy): the metrics
    are exactly those of the same values as float64; a wider later chunk widens the block first."""
    split = make_split(tiny_ml, SplitConfig(seed=1))
    ep = split.episodes("test", 1)
    rng = np.random.default_rng(3)
    # few distinct values: ties everywhere, which float32 and float64 must break the same way
    table = rng.integers(0, 4, size=(tiny_ml.n_items, tiny_ml.n_items)).astype(np.float32) / 3
    narrow = score_episodes(lambda b: table[b.support_items[:, 0]], split, ep)
    wide = score_episodes(lambda b: table[b.support_items[:, 0]].astype(np.float64), split, ep)
    assert narrow.dtype == np.float32 and wide.dtype == np.float64
    np.testing.assert_array_equal(narrow, wide)
    a, b = metrics_for(narrow, ep), metrics_for(wide, ep)
    for metric in a:
        np.testing.assert_array_equal(a[metric], b[metric])
    monkeypatch.setattr(protocol, "SCORE_CHUNK", 2)
    calls = []

    def mixed(batch):  # float32, then float64 values that float32 would round
        calls.append(1)
        s = table[batch.support_items[:, 0]].astype(np.float64)
        return s.astype(np.float32) if len(calls) == 1 else s + 1e-9
    got = score_episodes(mixed, split, ep)
    assert got.dtype == np.float64 and len(ep) > 2
    np.testing.assert_array_equal(got[2:][np.isfinite(got[2:])], (wide[2:] + 1e-9)[np.isfinite(wide[2:])])


def test_validator_refuses_a_k_no_validation_user_can_be_scored_at(tiny_ml):
    split = make_split(tiny_ml, SplitConfig(seed=0))
    longest = max(len(split.user_history(int(u))[0]) for u in split.users_of("val"))
    assert make_validator(split, k=longest - 1).n_users >= 1  # the longest history still has one query item
    with pytest.raises(ConfigError, match=f"no validation user has more than {longest} interactions"):
        make_validator(split, k=longest)
    with pytest.raises(ConfigError, match="validation shots must be >= 1"):
        make_validator(split, k=0)
    with pytest.raises(ConfigError, match="validation shots must be >= 1"):  # the benchmark's, before any data
        BenchmarkConfig(val_shots=0)


def _episodes(query: list[list[int]], n_items: int):
    from metarec.data.splits import Episodes

    return Episodes(k=0, users=np.arange(len(query)), support_items=np.zeros((len(query), 0), np.int64),
                    support_ratings=np.zeros((len(query), 0), np.float32),
                    query_items=[np.asarray(q, np.int64) for q in query],
                    query_ratings=[np.ones(len(q), np.float32) for q in query], n_items=n_items, n_dropped=0)


def test_new_arrivals_rank_only_new_items_and_break_ties_at_random():
    new = np.array([False, True, True, True])
    ep = _episodes([[2], [0]], 4)  # user 1's only query item is warm: no relevant new item
    m = evaluate.new_arrival_metrics(np.array([[9.0, 1, 3, 2], [9.0, 1, 3, 2]]), ep, new, np.random.default_rng(0))
    assert m["ndcg@10"][0] == 1.0 and m["recall@10"][0] == 1.0  # the warm item 0 is not ranked
    assert np.isnan(m["ndcg@10"][1]) and m["n_relevant"].tolist() == [1, 0]
    # three new items tied: item 3 lands at each position alike, not always last (the index order)
    tied = [evaluate.new_arrival_metrics(np.array([[9.0, 0, 0, 0]]), _episodes([[3]], 4), new,
                                         np.random.default_rng(s))["ndcg@10"][0] for s in range(600)]
    assert np.mean(tied) == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(4)) / 3, abs=0.02)
    assert evaluate.new_share(np.array([[5.0, 4, 3, 2], [1, 2, 3, 4]]), np.array([False, True, False, True]),
                              k=2).tolist() == [0.5, 0.5]
    assert evaluate.new_share(np.array([[5.0, -np.inf, -np.inf, 2]]), new, k=3).tolist() == [0.5]


def test_the_benchmark_reports_the_new_items_view(tmp_path):
    from metarec.bench.report import render_report
    from metarec.bench.runner import run_benchmark
    from metarec.data import load_dataset

    # items 1-20 from the start; items 21-25 only from the last users, after any cut
    rows = ["user_id,item_id,rating,timestamp"]
    for u in range(1, 41):
        late = u > 32
        items = list(range(1 + u % 5, 21, 3)) + ([21 + u % 5, 21 + (u + 1) % 5] if late else [])
        rows += [f"u{u},i{i},4,{u * 1000 + n}" for n, i in enumerate(items)]
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "interactions.csv").write_text("\n".join(rows) + "\n")
    data = load_dataset("csv", tmp_path / "log")
    res = run_benchmark(BenchmarkConfig(dataset="csv", methods=("popularity", "itemknn"), shots=(1, 3), seeds=1),
                        data=data)
    arrivals = [r for r in res.records if r["scenario"] == "new-arrivals" and r["split"] == "test"]
    assert {r["metric"] for r in arrivals} == {"ndcg@10", "recall@10"} and all(r["n_users"] > 0 for r in arrivals)
    share = [r for r in res.records if r["metric"] == "new_share@10" and r["split"] == "test"]
    assert share and all(r["value"] == 0.0 for r in share)  # no new item was ever interacted with before T
    assert "## New items (test users)" in render_report(res, "test")
