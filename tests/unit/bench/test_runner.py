"""The runner owns the protocol: methods never see query data, test users or post-T rows."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from metarec.bench.report import read_per_user, write_artifacts
from metarec.bench.runner import BenchmarkConfig, run_benchmark
from metarec.core.errors import ConfigError
from metarec.data import make_split
from metarec.methods.base import Method
from metarec.methods.registry import _REGISTRY, register


class Spy(Method):
    """Records everything the runner hands it; scores like popularity."""

    name = "_spy"
    fits: list = []
    batches: list = []

    def fit(self, data, validator=None):
        Spy.fits.append(data)
        self.counts = data.item_counts
        self.fitting = True
        if validator is not None:
            validator(self.score)
        self.fitting = False
        return self

    def score(self, batch):
        Spy.batches.append((self.seed, self.fitting, batch))
        return np.broadcast_to(self.counts, (len(batch), self.counts.size)).copy()


def test_methods_never_see_query_test_users_or_post_t_rows(tiny_ml):
    register(Spy)
    try:
        Spy.fits, Spy.batches = [], []
        cfg = BenchmarkConfig(dataset="fixture", methods=("_spy",), shots=(1, 3), seeds=2)
        run_benchmark(cfg, data=tiny_ml)
    finally:
        _REGISTRY.pop("_spy")
    d = tiny_ml
    for seed, fd in enumerate(Spy.fits):
        split = make_split(d, __import__("metarec.data", fromlist=["SplitConfig"]).SplitConfig(seed=seed))
        rows, cols = fd.matrix.nonzero()
        pre = {(u, i) for u, i, t in zip(d.user, d.item, d.timestamp) if t < split.cut_time}
        assert set(zip(rows.tolist(), cols.tolist())) == pre  # exactly the pre-T rows
        assert not np.isin(rows, split.new_users).any()
        assert fd.users.loc[split.new_users, "age"].isna().all()
        for items, _ in fd.sequences:
            assert len(items) > 0
    # every scored row is exactly the first-K prefix of a new user's history (never a query item);
    # while fitting (validation) those users are validation users, never test users
    from metarec.data import SplitConfig

    n_fit_rows = 0
    for seed, fitting, b in Spy.batches:
        split = make_split(d, SplitConfig(seed=seed))
        allowed_users = split.val_users if fitting else split.new_users
        prefixes = {tuple(split.user_history(int(u))[0][:b.k].tolist()) for u in allowed_users}
        if not fitting:  # warm users' rows after T (the warm-user scenarios), never before T
            prefixes |= {tuple(split.user_history(int(u), after_cut=True)[0][:b.k].tolist())
                         for u in split.warm_eval_users}
        for row in b.support_items:
            assert tuple(row.tolist()) in prefixes
        n_fit_rows += len(b) if fitting else 0
    assert n_fit_rows > 0 and len(Spy.batches) > 2


def test_results_json_is_byte_identical_and_complete(tiny_ml, tmp_path):
    cfg = BenchmarkConfig(dataset="fixture", methods=("popularity", "itemknn", "ease", "mf", "random"),
                          shots=(1, 3), seeds=2)
    for out in ("a", "b"):
        write_artifacts(run_benchmark(cfg, data=tiny_ml), tmp_path / out, "metarec benchmark (test)")
    a, b = (tmp_path / "a" / "results.json").read_bytes(), (tmp_path / "b" / "results.json").read_bytes()
    assert a == b
    recs = json.loads(a)
    assert {r["metric"] for r in recs} >= {"ndcg@10", "recall@10", "precision@10", "map@10", "hit@10",
                                           "ndcg@20", "recall@20"}
    assert {r["split"] for r in recs} == {"val", "test", "warm"}
    assert {r["scenario"] for r in recs if r["split"] == "warm"} == {"all", "warm-items", "new-items"}
    for key in ("dataset", "method", "shots", "seed", "split", "metric", "value", "n_users"):
        assert key in recs[0]
    assert (tmp_path / "a" / "per_user.parquet").read_bytes() == (tmp_path / "b" / "per_user.parquet").read_bytes()
    pu = read_per_user(tmp_path / "a")
    assert {"user_id", "n_relevant", "n_support", "ndcg@10"} <= set(pu.columns)
    assert set(pu["user_id"]) <= set(tiny_ml.user_ids.tolist())
    report = (tmp_path / "a" / "report.md").read_text()
    assert "metarec benchmark (test)" in report and "Paired test" in report and "warm user, new item" in report
    assert (tmp_path / "a" / "ndcg_vs_shots.png").stat().st_size > 10_000
    # the record means are the per-user means
    r = next(x for x in recs if x["method"] == "itemknn" and x["shots"] == 3 and x["seed"] == 1
             and x["split"] == "test" and x["metric"] == "ndcg@10" and x["scenario"] == "all")
    sel = pu[(pu.method == "itemknn") & (pu.shots == 3) & (pu.seed == 1) & (pu.split == "test")]
    assert len(sel) == r["n_users"]
    assert r["value"] == np.float64(sel["ndcg@10"].mean()).round(6) or abs(r["value"] - sel["ndcg@10"].mean()) < 1e-6


class SupportMean(Method):
    """Predicts every rating as the user's mean support rating (a real, if simple, rating model)."""

    name = "_support_mean"
    predicts_ratings = True

    def fit(self, data, validator=None):
        self.n_items = data.n_items
        return self

    def score(self, batch):
        return np.zeros((len(batch), self.n_items))

    def predict_ratings(self, batch, items):
        means = np.nanmean(batch.support_ratings, axis=1)
        return [np.full(len(it), m) for it, m in zip(items, means)]


def test_rating_errors_are_reported_for_rating_predictors_only(tiny_ml, tmp_path):
    register(SupportMean)
    try:
        cfg = BenchmarkConfig(dataset="fixture", methods=("_support_mean", "popularity"), shots=(2,), seeds=1)
        res = run_benchmark(cfg, tiny_ml)
    finally:
        _REGISTRY.pop("_support_mean")
    ep = make_split(tiny_ml).episodes("test", 2)
    # by hand: |r - mean(support)| per query item, averaged per user, then over users
    mae = np.mean([np.abs(q - s.mean()).mean() for q, s in zip(ep.query_ratings, ep.support_ratings)])
    rmse = np.mean([np.sqrt(((q - s.mean()) ** 2).mean()) for q, s in zip(ep.query_ratings, ep.support_ratings)])
    rec = {(r["method"], r["metric"]): r["value"] for r in res.records
           if r["split"] == "test" and r["scenario"] == "all"}
    assert np.isclose(rec[("_support_mean", "query_mae")], mae)
    assert np.isclose(rec[("_support_mean", "query_rmse")], rmse)
    assert ("popularity", "query_mae") not in rec  # ranking-only methods get no rating error
    write_artifacts(res, tmp_path, "test")
    report = (tmp_path / "report.md").read_text()
    assert "## Rating error on query items" in report and f"{mae:.4f}" in report


def test_max_val_users_caps_what_tuning_scores_and_the_report_says_so(tiny_ml, tmp_path):
    register(Spy)
    try:
        Spy.fits, Spy.batches = [], []
        cfg = BenchmarkConfig(dataset="fixture", methods=("_spy",), shots=(1,), seeds=1, max_val_users=1)
        res = run_benchmark(cfg, data=tiny_ml)
    finally:
        _REGISTRY.pop("_spy")
    fit_rows = sum(len(b) for _, fitting, b in Spy.batches if fitting)
    assert fit_rows == 1
    n_val = res.splits[0]["n_val_users"]
    assert n_val > 1
    with warnings.catch_warnings():
        # the figure's legend keeps a method named "_spy" (matplotlib warns when it drops a label)
        warnings.simplefilter("error")
        write_artifacts(res, tmp_path, "cmd")
    assert f"sample of 1 of the {n_val} validation users" in (tmp_path / "report.md").read_text()


def test_a_method_that_cannot_run_is_skipped_and_reported(tiny_ml, tmp_path, monkeypatch):
    from metarec.methods.ease import EASE

    monkeypatch.setattr(EASE, "MAX_ITEMS", tiny_ml.n_items - 1)
    cfg = BenchmarkConfig(dataset="fixture", methods=("ease", "popularity"), shots=(1,), seeds=2)
    res = run_benchmark(cfg, data=tiny_ml)
    assert set(res.skipped) == {"ease"} and f"exceeds {tiny_ml.n_items - 1} items" in res.skipped["ease"]
    assert {r["method"] for r in res.records} == {"popularity"}
    assert set(res.method_info) == {"popularity"} and len(res.method_info["popularity"]) == 2
    write_artifacts(res, tmp_path, "cmd")
    assert "> **ease skipped**: EASE needs a dense" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "run_info.json").read_text())["skipped"] == res.skipped


def test_max_warm_users_samples_the_warm_scenarios_and_the_report_says_so(tiny_ml, tmp_path):
    cfg = BenchmarkConfig(dataset="fixture", methods=("popularity",), shots=(1,), seeds=2)
    full = run_benchmark(cfg, data=tiny_ml)
    capped = run_benchmark(BenchmarkConfig(**{**cfg.__dict__, "max_warm_users": 1}), data=tiny_ml)
    n_warm = full.splits[0]["n_warm_eval_users"]
    assert n_warm > 1
    pw = capped.per_user[capped.per_user["split"] == "warm"]
    assert pw.groupby(["seed", "shots"]).size().max() == 1
    fw = full.per_user[full.per_user["split"] == "warm"]
    assert len(fw.groupby(["seed", "shots"])) == len(pw.groupby(["seed", "shots"]))
    # the sampled user's row is the same row as in the full run; test users are untouched
    merged = pw.merge(fw, on=["seed", "shots", "user_id"], suffixes=("", "_full"))
    assert len(merged) == len(pw) and (merged["ndcg@10"] == merged["ndcg@10_full"]).all()
    pd.testing.assert_frame_equal(capped.per_user[capped.per_user["split"] == "test"].reset_index(drop=True),
                                  full.per_user[full.per_user["split"] == "test"].reset_index(drop=True))
    write_artifacts(capped, tmp_path, "cmd")
    assert f"at most 1 of the (up to) {n_warm} warm users" in (tmp_path / "report.md").read_text()


class OnDevice(Spy):
    """A method with a network: the runner hands it the benchmark's device."""

    name = "_on_device"
    runs_on_device = True
    devices: list = []

    def __init__(self, seed=0, device="cpu"):
        super().__init__(seed)
        OnDevice.devices.append(device)


def test_the_device_reaches_only_methods_with_a_network_and_a_bad_one_fails_first(tiny_ml, tmp_path):
    import pytest

    from metarec.core.errors import ConfigError

    register(Spy)
    register(OnDevice)
    try:
        OnDevice.devices = []
        cfg = BenchmarkConfig(dataset="fixture", methods=("_spy", "_on_device"), shots=(1,), seeds=2, device="auto")
        res = run_benchmark(cfg, data=tiny_ml)  # Spy takes no device: it would fail if given one
        assert OnDevice.devices == ["auto", "auto"]
        run_benchmark(BenchmarkConfig(**{**cfg.__dict__, "method_options": {"_on_device": {"device": "cpu"}}}),
                      data=tiny_ml)
        assert OnDevice.devices[2:] == ["cpu", "cpu"]  # a method's own option wins
        # the default device (cpu) is not passed at all: a subclass whose __init__ predates `device` still runs
        Spy.runs_on_device = True
        run_benchmark(BenchmarkConfig(**{**cfg.__dict__, "methods": ("_spy",), "device": "cpu"}), data=tiny_ml)
    finally:
        Spy.runs_on_device = False
        _REGISTRY.pop("_spy")
        _REGISTRY.pop("_on_device")
    write_artifacts(res, tmp_path, "cmd")
    expect = "cuda" if __import__("torch").cuda.is_available() else "cpu"
    assert f"Networks ran on `{expect}` (`--device auto`)." in (tmp_path / "report.md").read_text()
    with pytest.raises(ConfigError, match="not a torch device"):
        BenchmarkConfig(dataset="fixture", methods=("popularity",), device="gpu0")


class Crashy(Spy):
    """Counts its fits; crashes on seed 1 while `crash` is set (a run killed half-way)."""

    name = "_crashy"
    crash = False
    fitted: list = []

    def fit(self, data, validator=None):
        if Crashy.crash and self.seed == 1:
            raise RuntimeError("killed")
        Crashy.fitted.append(self.seed)
        return super().fit(data, validator)


def test_an_interrupted_run_goes_on_from_its_progress_and_gives_the_straight_result(tiny_ml, tmp_path):
    import pytest

    from metarec.core.errors import ConfigError

    register(Crashy)
    try:
        cfg = BenchmarkConfig(dataset="fixture", methods=("popularity", "_crashy", "ease"), shots=(1, 2), seeds=2)
        straight = run_benchmark(cfg, data=tiny_ml)
        Crashy.fitted, Crashy.crash = [], True
        with pytest.raises(RuntimeError, match="killed"):
            run_benchmark(cfg, data=tiny_ml, progress_dir=tmp_path / "p")
        assert Crashy.fitted == [0]  # seed 0 done and saved, then the crash
        Crashy.fitted, Crashy.crash = [], False
        resumed = run_benchmark(cfg, data=tiny_ml, progress_dir=tmp_path / "p")
        assert Crashy.fitted == [1]  # seed 0 (and seed 1's popularity) came from the progress folder
        assert resumed.records == straight.records
        pd.testing.assert_frame_equal(resumed.per_user, straight.per_user)
        assert resumed.method_info == straight.method_info
        assert [(t["method"], t["seed"]) for t in resumed.timings] == [(t["method"], t["seed"]) for t in straight.timings]
        # more seeds go on from the same progress; other settings are refused, naming what differs
        Crashy.fitted = []
        more = run_benchmark(BenchmarkConfig(**{**cfg.__dict__, "seeds": 3}), data=tiny_ml, progress_dir=tmp_path / "p")
        assert Crashy.fitted == [2] and more.records[:len(straight.records)] == straight.records
        with pytest.raises(ConfigError, match=r"other settings \(shots\)"):
            run_benchmark(BenchmarkConfig(**{**cfg.__dict__, "shots": (1,)}), data=tiny_ml, progress_dir=tmp_path / "p")
    finally:
        Crashy.crash = False
        _REGISTRY.pop("_crashy")


def test_methods_that_rank_from_interactions_are_not_run_at_k_0(tiny_ml, tmp_path):
    """At K = 0 item-kNN has nothing to rank from (every score equal: the "ranking" would be the
    catalog's id order); the run leaves it out of K = 0, keeps it at K = 2, and the report says so."""
    cfg = BenchmarkConfig(dataset="fixture", methods=("popularity", "itemknn"), shots=(0, 2), seeds=1)
    res = run_benchmark(cfg, data=tiny_ml)
    ran = {(r["method"], r["shots"]) for r in res.records}
    assert ran == {("popularity", 0), ("popularity", 2), ("itemknn", 2)}
    assert set(res.per_user[res.per_user["method"] == "itemknn"]["shots"]) == {2}
    write_artifacts(res, tmp_path, "metarec benchmark (test)")
    report = (tmp_path / "report.md").read_text()
    k0 = report[report.index("## K = 0"):report.index("## K = 2")]
    assert "| popularity |" in k0 and "| itemknn |" not in k0
    assert "Not run at K = 0: itemknn" in k0 and "Not run at K = 2" not in report


def test_tuning_at_each_k_is_one_run_per_k_tuned_at_that_k(tiny_ml, tmp_path):
    """tune_each_k gives exactly what separate runs give, one per K with val_shots = K (K = 0 tuned at
    K = 1), and its progress folder holds one piece per (seed, method, validation K): K = 0 and 1 share
    one fit."""
    methods = ("popularity", "itemknn", "ease", "mf")
    cfg = BenchmarkConfig(dataset="fixture", methods=methods, shots=(0, 1, 2), seeds=1, tune_each_k=True)
    res = run_benchmark(cfg, data=tiny_ml, progress_dir=tmp_path / "p")
    assert sorted(f.name for f in (tmp_path / "p").glob("*.json") if f.name != "config.json") == sorted(
        f"0-{m}_K{k}.json" for m in methods for k in (1, 2))
    key = ["method", "shots", "seed", "split", "scenario", "metric"]
    for k in (0, 1, 2):
        alone = run_benchmark(BenchmarkConfig(dataset="fixture", methods=methods, shots=(k,), seeds=1,
                                              val_shots=max(k, 1)), data=tiny_ml)
        got = sorted((r for r in res.records if r["shots"] == k), key=lambda r: [r[c] for c in key])
        assert got == sorted(alone.records, key=lambda r: [r[c] for c in key])
        pu = res.per_user[res.per_user["shots"] == k].sort_values(["method", "split", "user_id"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(pu, alone.per_user.sort_values(["method", "split", "user_id"])
                                      .reset_index(drop=True))
        for m in methods:
            if k or m == "popularity":
                assert {**alone.method_info[m][0], "tuned_at_k": max(k, 1)} in res.method_info[m]
    again = run_benchmark(cfg, data=tiny_ml, progress_dir=tmp_path / "p")  # every piece taken from the folder
    assert again.records == res.records
    register(Spy)  # what each fit's validator scores: K = 0 and 1 are tuned at K = 1, K = 2 at K = 2
    try:
        seen = []
        for k in (0, 1, 2):
            Spy.batches = []
            run_benchmark(BenchmarkConfig(dataset="fixture", methods=("_spy",), shots=(k,), seeds=1,
                                          tune_each_k=True), data=tiny_ml)
            seen.append({b.k for _, fitting, b in Spy.batches if fitting})
        Spy.fits = []  # a K that no validation user reaches is refused before the first K's fit
        with pytest.raises(ConfigError, match="no validation user has more than 10000 interactions"):
            run_benchmark(BenchmarkConfig(dataset="fixture", methods=("_spy",), shots=(1, 10000), seeds=1,
                                          tune_each_k=True), data=tiny_ml)
        assert Spy.fits == []
    finally:
        _REGISTRY.pop("_spy")
    assert seen == [{1}, {1}, {2}]
    write_artifacts(res, tmp_path / "out", "metarec benchmark (test)")
    report = (tmp_path / "out" / "report.md").read_text()
    assert "fitted once per K, tuned and early-stopped on validation users' NDCG@10 at that K" in report
    settings = report[report.index("## Chosen settings"):]
    assert all(f"| {m} (tuned at K = {k}) |" in settings for m in methods for k in (1, 2))
    assert f'"lambda": {res.method_info["ease"][-1]["lambda"]}, "sweep_reused": false, "tuned_at_k": 2' in settings
    assert "Not run at K = 0: ease, itemknn, mf rank only" in report  # fitted with K = 1, not scored at 0
