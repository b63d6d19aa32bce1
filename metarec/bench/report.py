"""Write a benchmark's artefacts: results.json, per_user.parquet, report.md (tables, tests, counts)."""

from __future__ import annotations

import io
import json
import math
import platform
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from metarec.data.protocol import HEADLINE
from metarec.bench.runner import BenchmarkResult
from metarec.bench.stats import mean_ci, paired_test
from metarec.core.config import atomic_write_bytes, atomic_write_text, save_json
from metarec.core.device import resolve_device
from metarec.core.errors import ConfigError
from metarec.methods.registry import method_class

RATING_METRICS = ("query_mae", "query_rmse")
TABLE_METRICS = ("ndcg@10", "recall@10", "precision@10", "map@10", "hit@10", "ndcg@20", "recall@20")


def _fmt(mean: float, half: float) -> str:
    if mean is None or math.isnan(mean):
        return "–"
    return f"{mean:.4f}" if math.isnan(half) else f"{mean:.4f} ± {half:.4f}"


def git_sha() -> str:
    """Short sha of the checkout, with "+dirty" when the library's tracked code has uncommitted edits
    (then the sha alone does not reproduce the numbers)."""
    here = Path(__file__).parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True, cwd=here).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", str(here.parent)],
                               capture_output=True, text=True, check=True, cwd=here).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def seed_means(records: list[dict], split: str = "test", scenario: str = "all") -> pd.DataFrame:
    """The records of one split and scenario as a DataFrame (one row per method, K, seed and metric)."""
    df = pd.DataFrame(records)
    return df[(df["split"] == split) & (df["scenario"] == scenario)]


def strongest(res: BenchmarkResult, k: int, exclude: str | None = None) -> str | None:
    """The method with the highest mean test NDCG@10 at K = `k` (optionally leaving one out), or None."""
    df = seed_means(res.records)
    df = df[(df["metric"] == HEADLINE) & (df["shots"] == k)]
    if exclude:
        df = df[df["method"] != exclude]
    if df.empty:
        return None
    return str(df.groupby("method")["value"].mean().idxmax())


PER_USER = "per_user.parquet"


def write_per_user(per_user: pd.DataFrame, path: Path) -> None:
    """Per-user rows, sorted, as zstd-compressed Parquet (full float64 precision, at a fraction of a
    CSV's size), written atomically."""
    pu = per_user.sort_values(["method", "shots", "seed", "split", "user_id"], kind="stable").reset_index(drop=True)
    buf = io.BytesIO()
    pu.to_parquet(buf, compression="zstd", index=False)
    atomic_write_bytes(path, buf.getvalue())


def read_per_user(folder: str | Path) -> pd.DataFrame:
    """A run's per-user rows: `per_user.parquet`, or the `per_user.csv` of runs written before it."""
    folder = Path(folder)
    if (folder / PER_USER).is_file():
        return pd.read_parquet(folder / PER_USER)
    if (folder / "per_user.csv").is_file():
        return pd.read_csv(folder / "per_user.csv")
    raise FileNotFoundError(f"{folder}: no {PER_USER} (written by `metarec benchmark --out`)")


def records_json(records: list[dict]) -> str:
    """A JSON array with one record per line (keys sorted): a third of the indented size, and a
    changed number is a one-line diff."""
    return "[\n" + ",\n".join(json.dumps(r, sort_keys=True) for r in records) + "\n]\n"


def write_artifacts(res: BenchmarkResult, out: Path, command: str) -> None:
    """Write a run's results.json, per_user.parquet, report.md, run_info.json and ndcg_vs_shots.png to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    recs = sorted(res.records, key=lambda r: (r["method"], r["shots"], r["seed"], r["split"],
                                               r["scenario"], r["metric"]))
    atomic_write_text(out / "results.json", records_json(recs))
    write_per_user(res.per_user, out / PER_USER)
    atomic_write_text(out / "report.md", render_report(res, command))
    save_json(out / "run_info.json", {
        "command": command, "git_sha": git_sha(), "python": platform.python_version(),
        "machine": platform.machine(), "timings": res.timings, "methods": res.method_info,
        "skipped": res.skipped,
        "splits": res.splits, "versions": _versions(),
    })
    from metarec.bench.plots import plot_ndcg_vs_shots

    plot_ndcg_vs_shots(res, out / "ndcg_vs_shots.png")


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for pkg in ("metarec", "torch", "transformers", "numpy", "scipy", "implicit", "learn2learn"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _min_support(name: str) -> int:
    """The method's `min_support` (0 for a name no longer registered, e.g. read back from a run folder)."""
    try:
        return method_class(name).min_support
    except ConfigError:
        return 0


def _new_item_section(res: BenchmarkResult, df: pd.DataFrame) -> list[str]:
    """Item cold start: each method ranking only the new items, and how many new items its
    full-catalog top 10 holds (the trade-off between the two views)."""
    arrivals = seed_means(res.records, split="test", scenario="new-arrivals")
    if arrivals.empty:
        return []
    new_rel = seed_means(res.records, split="test", scenario="new-items")
    lines = ["", "## New items (test users)", "",
             "Ranking only the items first seen after the cut (the new arrivals), with the user's query items "
             "among them as relevant; users with none are left out (n = users per seed). Ties are broken in a "
             "seeded random order, so a method that scores every unseen item alike ranks them at random: the "
             "floor. Beside it, in the full-catalog ranking: the share of new items in each user's top 10, and "
             "recall@10 on new items.", "",
             "| method | K | new arrivals: NDCG@10 | new arrivals: recall@10 | full catalog: new items in top 10 "
             "| full catalog: recall@10 on new items |", "|---|---|---|---|---|---|"]

    def cell(sd, m, k, metric, n=False):
        v = sd[(sd["method"] == m) & (sd["shots"] == k) & (sd["metric"] == metric)]
        if not len(v):
            return "–"
        return _fmt(*mean_ci(v["value"].astype(float))) + (f" (n={int(round(v['n_users'].mean()))})" if n else "")

    for m in sorted(arrivals["method"].unique()):
        for k in res.config.shots:
            lines.append(f"| {m} | {k} | {cell(arrivals, m, k, HEADLINE, True)} | {cell(arrivals, m, k, 'recall@10')} | "
                         f"{cell(df, m, k, 'new_share@10')} | {cell(new_rel, m, k, 'recall@10')} |")
    return lines


def _paired(pu: pd.DataFrame, a: str, b: str, k: int) -> dict:
    """The paired test of method a against b on the same test users at K = k (see stats.paired_test)."""
    x = pu[(pu["method"] == a) & (pu["shots"] == k)].sort_values(["seed", "user_id"])
    y = pu[(pu["method"] == b) & (pu["shots"] == k)].sort_values(["seed", "user_id"])
    if not np.array_equal(x[["seed", "user_id"]].to_numpy(), y[["seed", "user_id"]].to_numpy()):
        raise ValueError(f"{a} and {b} were scored on different test users at K = {k}")
    return paired_test(x[HEADLINE].to_numpy(), y[HEADLINE].to_numpy(), groups=x["user_id"].to_numpy())


OWN = "metarec"  # the library's model: its own section of the report compares it with everything else


def _against_best_other(res: BenchmarkResult, pu: pd.DataFrame) -> list[str]:
    """metarec's paired difference at every K to the best other method (the highest mean test
    NDCG@10 among methods that are not metarec or a variant of it, "metarec:..."), and to
    pooled-finetune (the same network without meta-learning) when it ran."""
    methods = {r["method"] for r in res.records}
    if OWN not in methods or len(methods) < 2:
        return []
    lines = ["", f"## {OWN} vs the best other method at each K", "",
             f"'best other': the highest mean test NDCG@10 at that K among the methods that are not {OWN} or a "
             f"variant of it; paired over test users as above. A positive difference is {OWN} ahead.", "",
             f"| K | best other | {OWN} | other | diff | t-test p | Wilcoxon p | vs pooled-finetune | its p |",
             "|---|---|---|---|---|---|---|---|---|"]
    df = seed_means(res.records)
    df = df[df["metric"] == HEADLINE]
    for k in res.config.shots:
        at = df[(df["shots"] == k) & (df["method"] != OWN) & ~df["method"].str.startswith(OWN + ":")]
        if at.empty:
            continue
        other = str(at.groupby("method")["value"].mean().idxmax())
        t = _paired(pu, OWN, other, k)
        mine = df[(df["shots"] == k) & (df["method"] == OWN)]["value"].mean()
        theirs = at[at["method"] == other]["value"].mean()
        row = (f"| {k} | {other} | {mine:.4f} | {theirs:.4f} | {t['mean_diff']:+.4f} | "
               f"{t['t_p']:.3g} | {t['wilcoxon_p']:.3g} |")
        if "pooled-finetune" in methods:
            tp = _paired(pu, OWN, "pooled-finetune", k)
            row += f" {tp['mean_diff']:+.4f} | {tp['t_p']:.3g} |"
        else:
            row += " | |"
        lines.append(row)
    return lines


def render_report(res: BenchmarkResult, command: str) -> str:
    """The Markdown report of a run: per-K tables, scenarios, paired tests, counts, settings and the command."""
    cfg = res.config
    lines = [f"# Cold-start benchmark: {cfg.dataset}", "", "Produced by:", "", "```", command, "```", ""]
    lines += [f"git {git_sha()}, Python {platform.python_version()}, {platform.machine()}; "
              f"{cfg.seeds} seed(s); shots {', '.join(map(str, cfg.shots))}; relevance: "
              + ("all query items" if cfg.relevance_threshold is None
                 else f"query items rated >= {cfg.relevance_threshold:g}")
              + ". Full-catalog ranking, support items excluded. Values are the mean over seeds of the "
              "mean over test users, ± the 95% t-interval over seeds. "
              + ("Every method was fitted once per K, tuned and early-stopped on validation users' NDCG@10 at "
                 "that K (K = 0 with K = 1's fit)." if cfg.tune_each_k else
                 f"Methods tune and early-stop on validation users' NDCG@10 at K = {cfg.val_shots}."
                 + (" metarec and pooled-finetune also choose their start at K = 1 and 10 (with enough validation "
                    "users there) and early-stop on the mean over those K."
                    if {OWN, "pooled-finetune"} & {r["method"] for r in res.records} else ""))
              + (f" Networks ran on `{resolve_device(cfg.device)}` (`--device {cfg.device}`)."
                 if cfg.device != "cpu" else ""), ""]
    n_val = max((s.get("n_val_users", 0) for s in res.splits), default=0)
    if cfg.max_val_users is not None and n_val > cfg.max_val_users:
        lines += [f"Choices (hyperparameters, early stopping) were made on a fixed seeded sample of "
                  f"{cfg.max_val_users} of the {n_val} validation users (`--max-val-users`).", ""]
    n_warm = max((s.get("n_warm_eval_users", 0) for s in res.splits), default=0)
    if cfg.max_warm_users is not None and n_warm > cfg.max_warm_users:
        lines += [f"Warm-user scenarios are measured on a fixed seeded sample of at most {cfg.max_warm_users} "
                  f"of the (up to) {n_warm} warm users who return after T (`--max-warm-users`).", ""]
    for m, why in res.skipped.items():
        lines += [f"> **{m} skipped**: {why}.", ""]
    if cfg.split != "time":
        lines += ["> **Not a time-based split**: this dataset has no timestamps, so new users were chosen "
                  "at random (seeded) and support/query order within a user is random.", ""]
    s0 = res.splits[0]
    lines += ["## Counts", "",
              "| seed | cut time | users | items | warm users | new users | val | test | warm users after T "
              "| new items | train rows |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in res.splits:
        lines.append(f"| {s['seed']} | {s['cut_time']} | {s['n_users']} | {s['n_items']} | {s['n_warm_users']} | "
                     f"{s['n_new_users']} | {s['n_val_users']} | {s['n_test_users']} | {s['n_warm_eval_users']} | "
                     f"{s['n_new_items']} | {s['n_train_interactions']} |")
    lines += ["", "| K | test users (seed 0) | dropped (< K+1 interactions) | query items that are new items |",
              "|---|---|---|---|"]
    for k in cfg.shots:
        lines.append(f"| {k} | {s0['users_per_shot'][str(k)]} | {s0['dropped_test_users_per_shot'][str(k)]} | "
                     f"{s0['new_query_items_per_shot'][str(k)]} |")
    df = seed_means(res.records)
    for k in cfg.shots:
        lines += ["", f"## K = {k} (test users)", "", "| method | " + " | ".join(TABLE_METRICS) + " |",
                  "|---|" + "---|" * len(TABLE_METRICS)]
        sub = df[df["shots"] == k]
        order = (sub[sub["metric"] == HEADLINE].groupby("method")["value"].mean()
                 .sort_values(ascending=False).index)
        for m in order:
            cells = [_fmt(*mean_ci(sub[(sub["method"] == m) & (sub["metric"] == met)]["value"].astype(float)))
                     for met in TABLE_METRICS]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        left_out = [m for m in res.method_info if k < _min_support(m)]
        if left_out:
            lines += ["", f"Not run at K = {k}: {', '.join(sorted(left_out))} rank only from a user's interactions "
                      "(with none, every item would score the same)."]
    lines += ["", "## Scenarios (NDCG@10): new/warm users x new/warm query items", "",
              "New users are the test users. Warm users are those who arrived before T and interact again "
              "at/after T: their support set is their first K interactions at/after T, their query set the "
              "rest; fitting never saw those rows and methods get only the support set, as for new users. "
              "Relevance is restricted to query items seen before T (warm items) or not (new items); the "
              "ranking is always the full catalog. Users with no relevant item in a scenario are left out "
              "of it (n = users per seed).", "",
              "| method | K | new user, warm item | new user, new item | warm user, warm item | warm user, new item |",
              "|---|---|---|---|---|---|"]
    cells_of = {("new user", sc): seed_means(res.records, split="test", scenario=sc)
                for sc in ("warm-items", "new-items")}
    cells_of.update({("warm user", sc): seed_means(res.records, split="warm", scenario=sc)
                     for sc in ("warm-items", "new-items")})
    for m in sorted(df["method"].unique()):
        for k in cfg.shots:
            cells = []
            for key in (("new user", "warm-items"), ("new user", "new-items"), ("warm user", "warm-items"),
                        ("warm user", "new-items")):
                sd = cells_of[key]
                v = sd[(sd["method"] == m) & (sd["shots"] == k) & (sd["metric"] == HEADLINE)]
                n = int(round(v["n_users"].mean())) if len(v) else 0
                cells.append(_fmt(*mean_ci(v["value"].astype(float))) + f" (n={n})" if len(v) else "–")
            lines.append(f"| {m} | {k} | " + " | ".join(cells) + " |")
    lines += _new_item_section(res, df)
    err = df[df["metric"].isin(RATING_METRICS)]
    if len(err):
        lines += ["", "## Rating error on query items (MeLU-comparable; not a ranking metric)", "",
                  "Only for methods that predict ratings, on explicit-feedback data: mean absolute and root "
                  "mean squared error of the predicted ratings of each test user's query items. These are "
                  "the numbers the MeLU line of papers reports; the ranking tables above are the headline.", "",
                  "| method | K | MAE | RMSE |", "|---|---|---|---|"]
        for m in sorted(err["method"].unique()):
            for k in cfg.shots:
                cells = [_fmt(*mean_ci(err[(err["method"] == m) & (err["shots"] == k) & (err["metric"] == met)]
                                       ["value"].astype(float))) for met in RATING_METRICS]
                lines.append(f"| {m} | {k} | " + " | ".join(cells) + " |")
    lines += ["", "## Paired test: best method vs the strongest other", "",
              "Per-user NDCG@10 on test users. A new user is a test user in several seeds' splits, so the tests "
              "run over users, each user's difference averaged over their seeds ((seed, user) pairs are not "
              "independent); 'mean diff' is over all pairs, as the tables above.", "",
              "| K | best | runner-up | mean diff | pairs | users | t-test p | Wilcoxon p |",
              "|---|---|---|---|---|---|---|---|"]
    pu = res.per_user[res.per_user["split"] == "test"] if len(res.per_user) else res.per_user
    for k in cfg.shots:
        best = strongest(res, k)
        other = strongest(res, k, exclude=best)
        if best is None or other is None:
            continue
        t = _paired(pu, best, other, k)
        lines.append(f"| {k} | {best} | {other} | {t['mean_diff']:+.4f} | {t['n_pairs']} | {t['n_units']} | "
                     f"{t['t_p']:.3g} | {t['wilcoxon_p']:.3g} |")
    lines += _against_best_other(res, pu)
    lines += ["", "## Chosen settings and wall time", "",
              "| method | fit s (mean) | score s (mean) | settings (seed 0) |",
              "|---|---|---|---|"]
    tdf = pd.DataFrame(res.timings)
    for m, infos in res.method_info.items():
        t = tdf[tdf["method"] == m]
        if not cfg.tune_each_k:
            lines.append(f"| {m} | {t['fit_s'].mean():.2f} | {t['score_s'].mean():.2f} | "
                         f"{json.dumps(infos[0] if infos else {}, sort_keys=True)} |")
            continue
        for k in dict.fromkeys(i["tuned_at_k"] for i in infos):  # one fit per validation K: a row each
            tk = t[t["tuned_at_k"] == k]
            first = next(i for i in infos if i["tuned_at_k"] == k)
            lines.append(f"| {m} (tuned at K = {k}) | {tk['fit_s'].mean():.2f} | {tk['score_s'].mean():.2f} | "
                         f"{json.dumps(first, sort_keys=True)} |")
    total = tdf["fit_s"].sum() + tdf["score_s"].sum()
    lines += ["", f"Total fit + score time: {total:.1f} s.", "", "![NDCG@10 vs K](ndcg_vs_shots.png)", ""]
    return "\n".join(lines)
