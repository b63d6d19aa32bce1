"""Run methods x shots x seeds under the protocol and collect tidy records and per-user rows."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from metarec.bench.evaluate import (VAL_SAMPLE, WARM_SAMPLE, evaluate_episodes, fit_data, make_validator,
                                    rating_errors, sample_episodes)
from metarec.core.device import resolve_device
from metarec.core.errors import ConfigError, MethodNotApplicableError
from metarec.core.progress import progress
from metarec.data import SplitConfig, load_dataset, make_split
from metarec.data.interactions import InteractionData
from metarec.methods.registry import available_methods, create_method, method_class

log = logging.getLogger(__name__)

DEFAULT_METHODS = ("popularity", "itemknn", "ease", "mf", "random")
SCENARIOS = ("all", "warm-items", "new-items")  # query relevance restricted to these items


@dataclass(frozen=True, kw_only=True)
class BenchmarkConfig:
    """One benchmark run. `methods=("all",)` expands to every registered method."""

    dataset: str = "ml-100k"
    data_dir: str | None = None
    methods: tuple[str, ...] = DEFAULT_METHODS
    shots: tuple[int, ...] = (1, 3, 5, 10)
    seeds: int = 5
    split: str = "time"
    relevance_threshold: float | None = None
    val_shots: int = 5
    max_val_users: int | None = VAL_SAMPLE  # tuning sample of validation users (see make_validator)
    max_warm_users: int | None = WARM_SAMPLE  # sample of returning warm users for their scenarios
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    device: str = "cpu"  # where methods with a torch network (runs_on_device) fit and score

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ConfigError(f"seeds must be >= 1, got {self.seeds}")
        if not self.shots or min(self.shots) < 0:
            raise ConfigError(f"shots must be non-negative integers, got {self.shots}")
        if not self.methods:
            raise ConfigError("no methods given")
        resolve_device(self.device)  # fail before any work, not at the first neural method

    def resolved_methods(self) -> tuple[str, ...]:
        if "all" in self.methods:
            return tuple(available_methods())
        known = set(available_methods())
        bad = [m for m in self.methods if m not in known]
        if bad:
            raise ConfigError(f"unknown method(s) {bad}; available: {', '.join(sorted(known))}")
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


def run_benchmark(cfg: BenchmarkConfig, data: InteractionData | None = None) -> BenchmarkResult:
    """Fit every method once per seed on the training side, then score each shot count."""
    data = data if data is not None else load_dataset(cfg.dataset, cfg.data_dir)
    methods = cfg.resolved_methods()
    records: list[dict] = []
    rows: list[pd.DataFrame] = []
    splits, timings = [], []
    skipped: dict[str, str] = {}
    info: dict[str, list[dict]] = {m: [] for m in methods}
    bar = progress(total=len(methods) * len(cfg.shots) * cfg.seeds, desc="benchmark", unit="run")
    for seed in range(cfg.seeds):
        split = make_split(data, SplitConfig(mode=cfg.split, seed=seed))
        splits.append(split.summary(cfg.shots))
        fd = fit_data(split)
        validator = make_validator(split, k=cfg.val_shots, threshold=cfg.relevance_threshold,
                                   max_users=cfg.max_val_users)
        scen_masks = {"all": None, "warm-items": ~split.new_items, "new-items": split.new_items}
        for name in methods:
            bar.set_postfix_str(f"seed {seed} {name}")
            opts = dict(cfg.method_options.get(name, {}))
            if cfg.device != "cpu" and method_class(name).runs_on_device:  # cpu: every method's default
                opts.setdefault("device", cfg.device)
            method = create_method(name, seed=seed, **opts)
            t0 = time.perf_counter()
            try:
                method.fit(fd, validator)
            except MethodNotApplicableError as e:
                log.warning("%s skipped: %s", name, e)
                skipped[name] = str(e)
                bar.update(len(cfg.shots))
                continue
            t_fit = time.perf_counter() - t0
            info[name].append(method.describe())
            t_score = 0.0
            for k in cfg.shots:
                for which in ("val", "test", "warm"):
                    ep = split.episodes(which, k)
                    if which == "warm":  # secondary scenarios: a fixed sample bounds their cost
                        ep = sample_episodes(ep, cfg.max_warm_users, [seed, 13, k])
                    if len(ep) == 0:
                        continue
                    # validation users only ever feed choices, not scenarios
                    masks = {"all": None} if which == "val" else scen_masks
                    by_scen, secs = evaluate_episodes(method.score, split, ep, masks,
                                                      threshold=cfg.relevance_threshold)
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
            timings.append({"method": name, "seed": seed, "fit_s": t_fit, "score_s": t_score})
        log.info("seed %d done", seed)
    bar.close()
    per_user = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    info = {m: v for m, v in info.items() if v}
    return BenchmarkResult(cfg, records, per_user, splits, timings, info, skipped)
