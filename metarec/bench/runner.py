"""Run methods x shots x seeds under the protocol and collect tidy records and per-user rows."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metarec.bench.evaluate import WARM_SAMPLE, evaluate_episodes, rating_errors
from metarec.core.config import atomic_write_bytes, save_json
from metarec.core.device import resolve_device
from metarec.core.errors import ConfigError, MethodNotApplicableError
from metarec.core.progress import progress
from metarec.data import SplitConfig, load_dataset, make_split
from metarec.data.splits import DEFAULT_SHOTS
from metarec.data.interactions import InteractionData
from metarec.data.protocol import (VAL_SAMPLE, VAL_SHOTS, Validator, check_val_shots, fit_data, keep_warm_users,
                                   make_validator, sample_episodes)
from metarec.methods.registry import available_methods, create_method, method_class

log = logging.getLogger(__name__)

DEFAULT_METHODS = ("popularity", "itemknn", "ease", "als", "random")
SCENARIOS = ("all", "warm-items", "new-items", "new-arrivals")  # relevance restricted to these items; the last
# also ranks only the new items (bench.evaluate.new_arrival_metrics)


@dataclass(frozen=True, kw_only=True)
class BenchmarkConfig:
    """One benchmark run. `methods=("all",)` expands to every registered method."""

    dataset: str = "ml-100k"
    data_dir: str | None = None
    methods: tuple[str, ...] = DEFAULT_METHODS
    shots: tuple[int, ...] = DEFAULT_SHOTS
    seeds: int = 5
    split: str = "time"
    relevance_threshold: float | None = None
    val_shots: int = VAL_SHOTS  # the K at which validation users are scored for every choice (tuning, early stopping)
    tune_each_k: bool = False  # fit every method once per K instead, each tuned at its K (K = 0 shares K = 1's)
    max_val_users: int | None = VAL_SAMPLE  # tuning sample of validation users (see make_validator)
    max_warm_users: int | None = WARM_SAMPLE  # sample of returning warm users for their scenarios
    max_train_users: int | None = None  # fit every method on a seeded sample of this many warm users (None: all)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    device: str = "cpu"  # where methods with a torch network (runs_on_device) fit and score

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ConfigError(f"seeds must be >= 1, got {self.seeds}")
        if not self.shots or min(self.shots) < 0:
            raise ConfigError(f"shots must be non-negative integers, got {self.shots}")
        if not self.methods:
            raise ConfigError("no methods given")
        check_val_shots(self.val_shots)
        resolve_device(self.device)  # fail before any work, not at the first neural method

    def resolved_methods(self) -> tuple[str, ...]:
        if "all" in self.methods:
            return tuple(available_methods())
        bad = []
        for m in self.methods:  # a method's alias (e.g. "mf") is accepted, and its rows keep that name
            try:
                method_class(m)
            except ConfigError:
                bad.append(m)
        if bad:
            raise ConfigError(f"unknown method(s) {bad}; available: {', '.join(available_methods())}")
        return self.methods


@dataclass
class BenchmarkResult:
    config: BenchmarkConfig
    records: list[dict]
    per_user: pd.DataFrame
    splits: list[dict]  # split summaries, one per seed
    timings: list[dict]  # wall seconds per (method, seed): fit and score
    method_info: dict[str, list[dict]]  # describe() per method per seed
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it cannot run on this dataset


def run_benchmark(cfg: BenchmarkConfig, data: InteractionData | None = None, *,
                  progress_dir: str | Path | None = None) -> BenchmarkResult:
    """Fit every method once per seed on the training side, then score each shot count.

    With `progress_dir`, each (seed, method) is saved there as soon as it is scored, and a run
    started again with the same configuration and folder takes the saved ones instead of fitting
    them again: a crash, an out-of-memory kill or Ctrl-C at seed 4 of 5 costs one method's work,
    not the whole run. The result is the one a straight run gives."""
    data = data if data is not None else load_dataset(cfg.dataset, cfg.data_dir)
    methods = cfg.resolved_methods()
    store = RunStore(Path(progress_dir), cfg, data.fingerprint()) if progress_dir is not None else None
    records: list[dict] = []
    rows: list[pd.DataFrame] = []
    splits, timings = [], []
    skipped: dict[str, str] = {}
    info: dict[str, list[dict]] = {m: [] for m in methods}
    bar = progress(total=len(methods) * len(cfg.shots) * cfg.seeds, desc="benchmark", unit="run")
    # one fit per (seed, method) scored at every K; or, with tune_each_k, one per (seed, method,
    # validation K), scored at the shots tuned at that K (K = 0 and 1 share theirs)
    if cfg.tune_each_k:
        by_val: dict[int, list[int]] = {}
        for k in cfg.shots:
            by_val.setdefault(max(k, 1), []).append(k)
        val_ks, groups = list(by_val), [tuple(g) for g in by_val.values()]
    else:
        val_ks, groups = [cfg.val_shots], [cfg.shots]
    for seed in range(cfg.seeds):
        split = make_split(data, SplitConfig(mode=cfg.split, seed=seed))
        splits.append(split.summary(cfg.shots))
        fd = None  # built when the first method of this seed needs fitting
        # every validation K first: one that no validation user reaches is refused before any fit
        validators: dict[int, Validator] = {
            k: make_validator(split, k=k, threshold=cfg.relevance_threshold, max_users=cfg.max_val_users)
            for k in val_ks}
        for shots, val_k in zip(groups, val_ks):
            for name in methods:
                if name in skipped or (cfg.tune_each_k and max(shots) < method_class(name).min_support):
                    bar.update(len(shots))  # skipped, or not run at these K: no fit for it
                    continue
                key = f"{name}@K{val_k}" if cfg.tune_each_k else name
                bar.set_postfix_str(f"seed {seed} {key}")
                done = store.load(seed, key) if store is not None else None
                if done is None:
                    if fd is None:
                        fd = fit_data(split)
                        if cfg.max_train_users is not None:
                            fd = keep_warm_users(fd, cfg.max_train_users, seed)
                    done = _run_method(cfg, shots, data, split, fd, validators[val_k], name, seed, bar)
                    if store is not None:
                        store.save(seed, key, done)
                else:
                    bar.update(len(shots))
                if done.skipped is not None:
                    skipped[name] = done.skipped
                    continue
                records.extend(done.records)
                if len(done.per_user):
                    rows.append(done.per_user)
                info[name].append({**done.info, "tuned_at_k": val_k} if cfg.tune_each_k else done.info)
                timings.append({**done.timing, "tuned_at_k": val_k, "shots": list(shots)} if cfg.tune_each_k
                               else done.timing)
            del validators[val_k]  # and with it what it caches (EASE's sweep holds a dense inverse)
        log.info("seed %d done", seed)
    bar.close()
    per_user = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    info = {m: v for m, v in info.items() if v}
    return BenchmarkResult(cfg, records, per_user, splits, timings, info, skipped)


@dataclass
class MethodRun:
    """One method's fit and scoring on one seed: what the run keeps of it (or why it was skipped)."""

    records: list[dict]
    per_user: pd.DataFrame
    info: dict
    timing: dict
    skipped: str | None = None


def _run_method(cfg: BenchmarkConfig, shots: tuple[int, ...], data: InteractionData, split, fd, validator,
                name: str, seed: int, bar) -> MethodRun:
    """Fit `name` once and score it at each of `shots` (cfg.shots, or one validation K's share of them)."""
    opts = dict(cfg.method_options.get(name, {}))
    if cfg.device != "cpu" and method_class(name).runs_on_device:  # cpu: every method's default
        opts.setdefault("device", cfg.device)
    method = create_method(name, seed=seed, **opts)
    t0 = time.perf_counter()
    try:
        method.fit(fd, validator)
    except MethodNotApplicableError as e:
        log.warning("%s skipped: %s", name, e)
        bar.update(len(shots))
        return MethodRun([], pd.DataFrame(), {}, {}, skipped=str(e))
    t_fit = time.perf_counter() - t0
    records: list[dict] = []
    rows: list[pd.DataFrame] = []
    scen_masks = {"all": None, "warm-items": ~split.new_items, "new-items": split.new_items}
    t_score = 0.0
    for k in shots:
        if k < method.min_support:  # no ranking to measure (Method.min_support); the report says so
            bar.update(1)
            continue
        for which in ("val", "test", "warm"):
            ep = split.episodes(which, k)
            if which == "warm":  # secondary scenarios: a fixed sample bounds their cost
                ep = sample_episodes(ep, cfg.max_warm_users, [seed, 13, k])
            if len(ep) == 0:
                continue
            # validation users only ever feed choices, not scenarios
            masks = {"all": None} if which == "val" else scen_masks
            # the new-arrivals view's random tie-break order: one per seed, K and split, the same for every method
            order = None if which == "val" else np.random.default_rng([seed, 17, k, ("test", "warm").index(which)])
            by_scen, secs = evaluate_episodes(method.score, split, ep, masks, threshold=cfg.relevance_threshold,
                                              new_arrivals=order)
            t_score += secs
            for scen, m in by_scen.items():
                n_rel = m.pop("n_relevant")
                if scen == "all" and which != "val" and method.predicts_ratings and data.explicit:
                    m.update(rating_errors(method, split, ep))
                for metric, vals in m.items():
                    ok = ~np.isnan(vals)
                    records.append({
                        "dataset": data.name, "method": name, "shots": k, "seed": seed,
                        "split": which, "scenario": scen, "metric": metric,
                        "value": float(vals[ok].mean()) if ok.any() else None,
                        "n_users": int(ok.sum()),
                    })
                if scen == "all":
                    df = pd.DataFrame(m)
                    df.insert(0, "user_id", data.user_ids[ep.users])
                    for col, val in (("split", which), ("seed", seed), ("shots", k), ("method", name)):
                        df.insert(0, col, val)
                    df["n_relevant"] = n_rel.astype(int)
                    df["n_support"] = k
                    rows.append(df)
            bar.update(1 / 3)
    per_user = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    info = json.loads(json.dumps(method.describe(), default=str))  # as the progress folder gives it back
    return MethodRun(records, per_user, info, {"method": name, "seed": seed, "fit_s": t_fit, "score_s": t_score})


class RunStore:
    """A benchmark's finished (seed, method) pieces on disk: `<seed>-<method>.parquet` (per-user rows)
    then `<seed>-<method>.json` (records, timing, describe(); its presence marks the piece done),
    both written atomically, beside `config.json`, the configuration they belong to."""

    def __init__(self, root: Path, cfg: BenchmarkConfig, data_fingerprint: dict) -> None:
        self.root = root
        # what one (seed, method) piece depends on: not the list of methods or the number of seeds
        # (a run may go on with a method left out, or more seeds), nor where the data was read from
        settings = {k: v for k, v in asdict(cfg).items() if k not in ("methods", "seeds", "data_dir")}
        fingerprint = json.loads(json.dumps({"config": settings, "data": data_fingerprint}, default=str))
        found = self.config_file = root / "config.json"
        self.fingerprint = fingerprint
        pieces = [f for f in root.glob("*.json") if f.name != "config.json"] if root.is_dir() else []
        if pieces:  # settings only bind once something was saved under them
            if not found.is_file():
                raise ConfigError(f"{root} holds saved pieces but not the config.json they were made with; "
                                  "use another output folder, or start afresh (--restart)")
            before = json.loads(found.read_text())
            if before != fingerprint:
                diff = sorted(k for k in set(before["config"]) | set(fingerprint["config"])
                              if before["config"].get(k) != fingerprint["config"].get(k))
                raise ConfigError(f"{root} holds the progress of a run with other settings "
                                  f"({', '.join(diff) or 'the data'}); run with the same ones, or use another "
                                  "output folder, or start afresh (--restart)")

    def _stem(self, seed: int, name: str) -> Path:
        return self.root / f"{seed}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"

    def load(self, seed: int, name: str) -> MethodRun | None:
        stem = self._stem(seed, name)
        if not stem.with_suffix(".json").is_file():
            return None
        d = json.loads(stem.with_suffix(".json").read_text())
        if d["method"] != name or d["seed"] != seed:
            raise ConfigError(f"{stem}.json belongs to method {d['method']!r}, seed {d['seed']}")
        per_user = pd.read_parquet(stem.with_suffix(".parquet")) if d["skipped"] is None else pd.DataFrame()
        log.info("seed %d %s: taken from %s", seed, name, self.root)
        return MethodRun(d["records"], per_user, d["info"], d["timing"], d["skipped"])

    def save(self, seed: int, name: str, run: MethodRun) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        save_json(self.config_file, self.fingerprint)
        stem = self._stem(seed, name)
        if run.skipped is None:
            buf = io.BytesIO()
            run.per_user.to_parquet(buf, index=False)
            atomic_write_bytes(stem.with_suffix(".parquet"), buf.getvalue())
        save_json(stem.with_suffix(".json"), {"method": name, "seed": seed, "records": run.records, "info": run.info,
                                              "timing": run.timing, "skipped": run.skipped})
