"""Batch recommendations give every user the list a single `adapt` gives, and refuse bad rows by
row (by file and line through the CLI)."""


import numpy as np
import pandas as pd
import pytest

from metarec.core.errors import ConfigError, UnknownItemError
from metarec.meta.recommender import MetaRecommender
from tests.fixtures import run_cli

NAN = float("nan")


def _users(tiny_ml):
    """{user: (item ids in time order, ratings)}: K = 3 three times (two chunks of chunk=2), 1 and 2."""
    ids = [int(i) for i in tiny_ml.item_ids]
    return {"a": ([ids[1], ids[2], ids[5]], [5, 4, NAN]), "b": ([ids[3]], [2]),
            "c": ([ids[7], ids[1], ids[9]], [1, 5, 3]), "d": ([ids[4], ids[6]], [NAN, NAN]),
            "f": ([ids[11], ids[0], ids[8]], [4, 4, 4])}


def _expected(rec, users, profiles, k):
    out = []
    for u, (items, rs) in users.items():
        out += [{"user_id": u, **row} for row in rec.adapt(items, ratings=rs, profile=profiles.get(u)).ranked(k)]
    for u in profiles:
        if u not in users:
            out += [{"user_id": u, **row} for row in rec.adapt([], profile=profiles[u]).ranked(k)]
    return pd.DataFrame(out)


def _same_lists(got, want):
    assert list(got.columns) == ["user_id", "rank", "item_id", "title", "score"]
    assert got["user_id"].tolist() == want["user_id"].tolist()
    assert got["rank"].tolist() == want["rank"].tolist()
    assert [str(i) for i in got["item_id"]] == [str(i) for i in want["item_id"]]
    assert got["title"].tolist() == want["title"].tolist()
    np.testing.assert_allclose(got["score"].to_numpy(float), want["score"].to_numpy(float), rtol=1e-5, atol=1e-6)


def test_batch_lists_are_the_single_user_lists(served):
    model_dir, tiny_ml = served
    rec = MetaRecommender.load(model_dir)
    users = _users(tiny_ml)
    df = pd.DataFrame([(u, i, r, 100 * n) for u, (items, rs) in users.items()
                       for n, (i, r) in enumerate(zip(items, rs))],
                      columns=["user_id", "item_id", "rating", "timestamp"])
    shuffled = df.iloc[[2, 3, 0, 6, 8, 1, 4, 5, 7, 11, 9, 10]]  # out of time order; first seen a, b, c, d, f
    assert pd.unique(shuffled["user_id"]).tolist() == list(users)
    profiles = {"a": "A 30-year-old female writer.", "e": "A 60-year-old retired engineer."}  # e: K = 0
    want = _expected(rec, users, profiles, 4)
    got = rec.recommend_many(shuffled, 4, profiles=profiles, chunk=2)
    _same_lists(got, want)
    assert len(got) == 6 * 4 and not (set(got.query("user_id == 'a'")["item_id"]) & set(users["a"][0]))
    # without timestamps the frame's order is each user's order: the time-sorted frame gives the same
    _same_lists(rec.recommend_many(df.drop(columns="timestamp"), 4, profiles=profiles), want)
    # profile keys match user ids as text: an int key finds the user whose id is the string "7"
    as_int = rec.recommend_many(df.replace({"user_id": {"a": "7"}}), 4, profiles={7: profiles["a"]})
    _same_lists(as_int.replace({"user_id": {"7": "a"}}), want[want["user_id"] != "e"].reset_index(drop=True))
    bare = rec.recommend_many(df, 4).query("user_id == 'a'")["score"].to_numpy()
    assert not np.allclose(bare, want.query("user_id == 'a'")["score"].to_numpy())  # the profile did count


@pytest.mark.parametrize("change, error, message", [
    (lambda df: df.assign(item_id=df["item_id"].where(df.index != 2, 424242)), UnknownItemError,
     r"interactions row 2: user 'a': item id 424242 is not in this model's catalog"),
    (lambda df: df.assign(rating=df["rating"].where(df.index != 4, 7.0)), ConfigError,
     r"interactions row 4: user 'c': rating 7 is outside this model's rating scale \[1, 5\]"),
    (lambda df: pd.concat([df, df.iloc[[0]]], ignore_index=True), ConfigError,
     r"interactions row 12: user 'a': item \d+ given twice"),
    (lambda df: df.drop(columns="item_id"), ConfigError, r"missing column\(s\) \['item_id'\]"),
])
def test_bad_rows_are_refused_by_row(served, change, error, message):
    model_dir, tiny_ml = served
    rec = MetaRecommender.load(model_dir)
    df = pd.DataFrame([(u, i, r) for u, (items, rs) in _users(tiny_ml).items() for i, r in zip(items, rs)],
                      columns=["user_id", "item_id", "rating"])
    with pytest.raises(error, match=message):
        rec.recommend_many(change(df), 3)
    with pytest.raises(ConfigError, match="k must be a whole number >= 1, got 0"):
        rec.recommend_many(df, 0)


def test_recommend_many_cli_writes_the_lists_and_names_bad_lines(served, tmp_path):
    model_dir, tiny_ml = served
    rec = MetaRecommender.load(model_dir)
    users = _users(tiny_ml)
    # no rating column: every rating is unknown, as in `adapt(items)` without ratings
    lines = ["user_id,item_id,timestamp"] + [f"{u},{i},{n}" for u, (items, _) in users.items()
                                             for n, i in enumerate(items)]
    (tmp_path / "users.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "profiles.csv").write_text('user_id,profile\ne,"A 60-year-old retired engineer, from Ohio."\n')
    cmd = ["--no-progress", "recommend-many", "--model", model_dir]
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"recs.{suffix}"
        run_cli(cmd + ["--users", tmp_path / "users.csv", "--profiles", tmp_path / "profiles.csv", "--out", out, "-k", "3"])
        got = pd.read_csv(out, dtype={"user_id": str}) if suffix == "csv" else pd.read_parquet(out)
        want = _expected(rec, {u: (items, None) for u, (items, _) in users.items()},
                         {"e": "A 60-year-old retired engineer, from Ohio."}, 3)
        _same_lists(got, want)
    lines[3] = "c,424242,0"  # line 4 of the file
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    bad = run_cli(cmd + ["--users", tmp_path / "bad.csv", "--out", tmp_path / "x.csv"], check=False)
    said = " ".join(bad.stderr.split())  # the console wraps long lines
    assert bad.exit_code == 2 and "bad.csv, line 4: user 'c': item id '424242' is not in this model's catalog" in said
    assert not (tmp_path / "x.csv").exists()


def test_the_benchmark_path_scores_each_user_as_adapt_does(served):
    """`score_batch` (what the benchmark and `evaluate` call) gives every row the scores `adapt` gives
    that user alone: a user's inner-loop negatives follow from their own support set, not their row."""
    model_dir, _ = served
    rec = MetaRecommender.load(model_dir)
    support = np.array([[1, 2, 5], [7, 1, 9], [11, 0, 8], [1, 2, 5]])
    together = rec.score_batch(support)
    for row in range(len(support)):
        alone = rec.adapt([rec.item_ids[i] for i in support[row]]).scores
        np.testing.assert_allclose(together[row], alone, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(together[0], together[3])  # the same support set, the same scores
