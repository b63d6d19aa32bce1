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


def paired_test(a, b, groups=None) -> dict:
    """Paired t-test and Wilcoxon signed-rank of a vs b over matched pairs.

    `groups` (optional, one label per pair: the user) makes the tests run over groups instead of
    pairs: each group's differences are averaged first. A new user is a test user in several seeds'
    splits, so their (seed, user) pairs are not independent observations, and counting each as one
    overstates the evidence (p-values too small). `mean_diff` is always the mean over pairs (the
    means the tables show); `n_units` is what the tests counted (groups, or pairs without groups);
    `diff_needed` is the smallest |mean difference| over those units that the two-sided t-test would
    call significant at 0.05 with the same spread (their standard error times t's 97.5% quantile).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    d = a - b
    if groups is not None:
        g = np.asarray(groups)[ok]
        _, inverse = np.unique(g, return_inverse=True)
        d_units = np.bincount(inverse, weights=d) / np.bincount(inverse)
    else:
        d_units = d
    out = {"n_pairs": int(a.size), "n_units": int(d_units.size),
           "mean_diff": float(d.mean()) if a.size else float("nan"), "diff_needed": float("nan")}
    if d_units.size >= 2:
        n = d_units.size
        out["diff_needed"] = float(stats.t.ppf(0.975, n - 1) * d_units.std(ddof=1) / np.sqrt(n))
    if d_units.size < 2 or np.allclose(d_units, 0.0):
        out.update(t_p=float("nan"), wilcoxon_p=float("nan"))
        return out
    out["t_p"] = float(stats.ttest_1samp(d_units, 0.0).pvalue)
    out["wilcoxon_p"] = float(stats.wilcoxon(d_units).pvalue)
    return out
