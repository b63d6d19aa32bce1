"""Aggregation over seeds (mean and 95% t-interval) and paired significance tests."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def mean_ci(values, level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the t confidence interval over seeds (NaN half-width for n < 2)."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size < 2:
        return float(v.mean()), float("nan")
    half = stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(half)


def paired_test(a, b) -> dict:
    """Paired t-test and Wilcoxon signed-rank of a vs b over matched (seed, user) pairs."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    out = {"n_pairs": int(a.size), "mean_diff": float((a - b).mean()) if a.size else float("nan")}
    if a.size < 2 or np.allclose(a, b):
        out.update(t_p=float("nan"), wilcoxon_p=float("nan"))
        return out
    out["t_p"] = float(stats.ttest_rel(a, b).pvalue)
    out["wilcoxon_p"] = float(stats.wilcoxon(a, b).pvalue)
    return out
