"""The runner's paired test: hand-computed t statistics, and users (not (seed, user) pairs) as the
unit when a user is scored in several seeds."""

import math

import numpy as np
import pytest
from scipy import stats

from metarec.bench.stats import mean_ci, paired_test


def t_p(d) -> float:
    """Two-sided one-sample t-test p of mean(d) = 0, from the formula."""
    d = np.asarray(d, np.float64)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    return 2 * stats.t.sf(abs(t), len(d) - 1)


def test_pairs_without_groups_are_the_textbook_paired_test():
    a, b = np.array([0.5, 0.6, 0.7, 0.9]), np.array([0.4, 0.4, 0.4, 0.5])  # differences 0.1, 0.2, 0.3, 0.4
    r = paired_test(a, b)
    # mean 0.25, sd sqrt(1/60): t = 0.25 / (sd / 2) = 3.873, 3 degrees of freedom
    assert r["mean_diff"] == pytest.approx(0.25)
    assert r["t_p"] == pytest.approx(2 * stats.t.sf(0.25 / (math.sqrt(1 / 60) / 2), 3))
    assert r["t_p"] == pytest.approx(0.0305, abs=1e-4)
    # signed ranks all positive, n = 4: the exact two-sided p is 2 / 2^4
    assert r["wilcoxon_p"] == pytest.approx(0.125)
    assert (r["n_pairs"], r["n_units"]) == (4, 4)
    # the smallest |mean| the t-test calls significant with this spread: t(0.975, 3) * sd / 2
    assert r["diff_needed"] == pytest.approx(stats.t.ppf(0.975, 3) * math.sqrt(1 / 60) / 2)


def test_a_user_scored_in_several_seeds_counts_once():
    rng = np.random.default_rng(0)
    b = rng.random(30)
    a = b + rng.normal(0.02, 0.1, 30)
    once = paired_test(a, b, groups=np.arange(30))
    # the same 30 users, each a test user in 3 seeds with the same scores: no new evidence
    users = np.tile(np.arange(30), 3)
    thrice = paired_test(np.tile(a, 3), np.tile(b, 3), groups=users)
    assert thrice["t_p"] == pytest.approx(once["t_p"]) and thrice["wilcoxon_p"] == pytest.approx(once["wilcoxon_p"])
    assert (thrice["n_pairs"], thrice["n_units"]) == (90, 30)
    # counting every (seed, user) pair as independent would claim far more than the data holds
    assert paired_test(np.tile(a, 3), np.tile(b, 3))["t_p"] < once["t_p"] / 10


def test_each_users_differences_are_averaged_before_the_test():
    diffs = {"u1": [0.1, 0.3], "u2": [-0.1], "u3": [0.4, 0.2, 0.0], "u4": [0.5]}  # user means 0.2, -0.1, 0.2, 0.5
    groups = [u for u, ds in diffs.items() for _ in ds]
    d = np.array([x for ds in diffs.values() for x in ds])
    r = paired_test(d + 1.0, np.ones_like(d), groups=groups)
    assert r["t_p"] == pytest.approx(t_p([0.2, -0.1, 0.2, 0.5]))
    assert r["diff_needed"] == pytest.approx(stats.t.ppf(0.975, 3) * np.std([0.2, -0.1, 0.2, 0.5], ddof=1) / 2)
    assert r["mean_diff"] == pytest.approx(d.mean())  # the mean over pairs, as the tables show
    assert (r["n_pairs"], r["n_units"]) == (7, 4)


def test_nan_pairs_are_dropped_and_no_difference_has_no_p():
    a = np.array([0.5, np.nan, 0.7, 0.2, 0.9])
    b = np.array([0.4, 0.3, np.nan, 0.1, 0.6])
    r = paired_test(a, b, groups=["x", "y", "z", "x", "w"])
    assert (r["n_pairs"], r["n_units"]) == (3, 2)  # x twice (0.1, 0.1), w once (0.3)
    assert r["t_p"] == pytest.approx(t_p([0.1, 0.3]))
    same = paired_test(b, b)
    assert math.isnan(same["t_p"]) and math.isnan(same["wilcoxon_p"]) and same["mean_diff"] == 0


def test_mean_ci_is_the_t_interval_over_seeds():
    m, half = mean_ci([0.1, 0.2, 0.3])
    assert m == pytest.approx(0.2) and half == pytest.approx(stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3))
    assert math.isnan(mean_ci([0.4])[1]) and math.isnan(mean_ci([])[0])
