"""Stationary block bootstrap: resampling structure, block length, coverage, arch cross-check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos_quant.metrics import (
    mean_ci,
    optimal_block_length,
    sharpe_difference_ci,
    sharpe_ratio,
    sharpe_ratio_ci,
    stationary_bootstrap,
    stationary_bootstrap_indices,
)


def _ar1(n: int, phi: float, rng: np.random.Generator, *, n_series: int = 1) -> np.ndarray:
    """(n_series, n) stationary AR(1) paths with unit innovations and mean 0."""
    x = np.empty((n_series, n))
    x[:, 0] = rng.standard_normal(n_series) / np.sqrt(1 - phi**2)
    e = rng.standard_normal((n_series, n))
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


def test_indices_are_wrapped_blocks_with_the_expected_mean_length() -> None:
    idx = stationary_bootstrap_indices(50, block_length=5.0, n_resamples=4000, rng=np.random.default_rng(0))
    assert idx.shape == (4000, 50) and idx.min() >= 0 and idx.max() <= 49
    step = (idx[:, 1:] - idx[:, :-1]) % 50
    continues = step == 1
    # a block continues with probability 1 - 1/b (a fresh start can also land on the next index: 1/(b n))
    assert continues.mean() == pytest.approx(1 - 1 / 5 + 1 / (5 * 50), abs=0.005)
    assert np.bincount(idx.ravel(), minlength=50).min() > 0.9 * idx.size / 50  # every index equally likely
    iid = stationary_bootstrap_indices(50, block_length=1.0, n_resamples=200, rng=np.random.default_rng(1))
    assert ((iid[:, 1:] - iid[:, :-1]) % 50 == 1).mean() < 0.05
    with pytest.raises(ValueError, match="block_length"):
        stationary_bootstrap_indices(10, block_length=0.5, n_resamples=1, rng=np.random.default_rng(0))


def test_optimal_block_length_matches_the_ar1_closed_form() -> None:
    """For AR(1), G / g = 2 phi / (1 - phi^2), so b_opt = (G / g)^(2/3) n^(1/3) (Politis & White 2004)."""
    rng = np.random.default_rng(3)
    n, phi = 2000, 0.5
    estimates = [optimal_block_length(x) for x in _ar1(n, phi, rng, n_series=20)]
    theory = (2 * phi / (1 - phi**2)) ** (2 / 3) * n ** (1 / 3)
    assert np.median(estimates) == pytest.approx(theory, rel=0.25)
    assert optimal_block_length(rng.standard_normal(2000)) < 3.0
    assert optimal_block_length([1.0, 2.0, np.nan]) == pytest.approx(2 ** (1 / 3))  # short-sample fallback


def test_optimal_block_length_agrees_with_arch() -> None:
    """Regression (audit of issue 15, F): with no significant autocorrelation the search stopped at lag 0,
    so M = 0 and the block length was exactly 1.0 for every return series of the quickstart (arch: 3.12 for
    the benchmark). The bandwidth search starts at lag 1 (M >= 2), as in Patton's code, R's np::b.star and
    arch; the estimates now equal arch's to the digit, except where arch's slightly different
    autocorrelation normalisation moves a lag across the significance band."""
    arch_bootstrap = pytest.importorskip("arch.bootstrap", reason="arch (dev extra) is needed for this cross-check")

    def theirs(x: np.ndarray) -> float:
        return max(1.0, float(arch_bootstrap.optimal_block_length(x)["stationary"].iloc[0]))

    rng = np.random.default_rng(4)
    returns = [np.random.default_rng(seed).normal(5e-4, 0.01, 250) for seed in range(5)]  # daily returns, a year
    series = [*returns, _ar1(1000, 0.6, rng)[0], _ar1(300, 0.2, rng)[0], np.convolve(rng.standard_normal(304),
                                                                                      np.ones(5), "valid")]
    for x in series:
        assert optimal_block_length(x) == pytest.approx(theirs(x), rel=1e-9)
    assert all(optimal_block_length(x) > 1.5 for x in returns[1:])  # not the old fixed 1.0
    agree = 0
    for i in range(200):  # white noise, AR(1), MA(4) and heavy-tailed volatility-clustered series of any length
        n, z = int(rng.integers(30, 1500)), rng.standard_normal(1600)
        x = [z[:n], _ar1(n, rng.uniform(0.1, 0.9), rng)[0], np.convolve(z, np.ones(5), "valid")[:n],
             rng.standard_t(3, size=n) * np.exp(np.convolve(z, np.ones(20) / 5, "same")[:n])][i % 4]
        agree += optimal_block_length(x) == pytest.approx(theirs(x), rel=1e-9)
    assert agree >= 194, agree


def test_interval_matches_arch_stationary_bootstrap() -> None:
    arch_bootstrap = pytest.importorskip("arch.bootstrap", reason="arch (dev extra) is needed for this cross-check")
    rng = np.random.default_rng(5)
    x = _ar1(400, 0.5, rng)[0] + 0.2
    ours = mean_ci(x, block_length=8.0, n_resamples=4000, seed=1)
    bs = arch_bootstrap.StationaryBootstrap(8.0, x, seed=2)
    low, high = bs.conf_int(lambda y: y.mean(), reps=4000, method="percentile", size=0.95)[:, 0]
    se = float(np.sqrt(bs.cov(lambda y: y.mean(), reps=4000)[0, 0]))
    assert ours["estimate"] == pytest.approx(x.mean())
    assert ours["std_error"] == pytest.approx(se, rel=0.1)
    width = high - low
    assert ours["ci_low"] == pytest.approx(low, abs=0.1 * width)
    assert ours["ci_high"] == pytest.approx(high, abs=0.1 * width)


def test_coverage_of_the_mean_on_ar1_data() -> None:
    """95% intervals of an AR(1) mean (phi 0.5, n 200) cover the true mean ~95% of the time;
    the i.i.d. bootstrap (blocks of length 1) under-covers (its variance is 1/3 of the truth)."""
    rng = np.random.default_rng(6)
    paths = _ar1(200, 0.5, rng, n_series=200)
    block = [mean_ci(p, n_resamples=400, seed=i)["ci_low"] <= 0 <= mean_ci(p, n_resamples=400, seed=i)["ci_high"]
             for i, p in enumerate(paths)]
    iid = [(lambda r: r["ci_low"] <= 0 <= r["ci_high"])(mean_ci(p, n_resamples=400, block_length=1.0, seed=i))
           for i, p in enumerate(paths)]
    assert 0.86 <= np.mean(block) <= 0.99
    assert np.mean(iid) < 0.85


def test_sharpe_intervals_and_pairing() -> None:
    rng = np.random.default_rng(8)
    idx = pd.bdate_range("2020-01-01", periods=750)
    bench = pd.Series(rng.normal(0.0003, 0.01, 750), index=idx)
    strat = bench + pd.Series(rng.normal(0.0004, 0.002, 750), index=idx)  # benchmark plus a small edge
    one = sharpe_ratio_ci(strat, seed=0)
    assert one["estimate"] == pytest.approx(sharpe_ratio(strat))
    assert one["ci_low"] < one["estimate"] < one["ci_high"]
    assert sharpe_ratio_ci(strat, seed=0) == one  # seeded
    diff = sharpe_difference_ci(strat, bench, seed=0)
    assert diff["estimate"] == pytest.approx(sharpe_ratio(strat) - sharpe_ratio(bench))
    assert diff["sharpe"] == pytest.approx(sharpe_ratio(strat)) and diff["sharpe_other"] == pytest.approx(sharpe_ratio(bench))
    # paired resampling keeps the 0.98 correlation: the difference is far tighter than either Sharpe
    assert diff["ci_high"] - diff["ci_low"] < 0.5 * (one["ci_high"] - one["ci_low"])
    assert diff["ci_low"] > 0 and diff["p_value"] < 0.05
    # alignment on the index: a shifted, longer benchmark gives the same answer on the shared dates
    longer = pd.concat([pd.Series([0.5], index=[pd.Timestamp("2019-12-31")]), bench])
    assert sharpe_difference_ci(strat, longer, seed=0)["estimate"] == pytest.approx(diff["estimate"])


def test_p_value_is_roughly_calibrated_under_the_null() -> None:
    """AR(1) phi 0.3, n 150, true mean 0: rejections at 10% measured 0.17 (the centred bootstrap
    p-value is somewhat liberal in small samples); far from the ~0.5 of a broken test."""
    rng = np.random.default_rng(9)
    p = [mean_ci(x, n_resamples=300, seed=i)["p_value"] for i, x in enumerate(_ar1(150, 0.3, rng, n_series=150))]
    assert 0.01 <= np.mean(np.array(p) < 0.1) <= 0.2


def test_short_and_degenerate_inputs() -> None:
    short = sharpe_ratio_ci([0.01, -0.02, np.nan, 0.03])
    assert short["n"] == 3 and np.isnan(short["ci_low"]) and "at least 8" in short["reason"]
    flat = sharpe_ratio_ci(np.zeros(50))
    assert np.isnan(flat["ci_low"]) and flat["reason"]
    with pytest.raises(ValueError, match="confidence"):
        mean_ci(np.ones(20), confidence=95)
    with pytest.raises(ValueError, match="same length"):
        sharpe_difference_ci(np.ones(10), np.ones(9))
    out = stationary_bootstrap(np.arange(30.0), lambda x: x.max(axis=1)[:, 0], n_resamples=50, seed=0)
    assert out["estimate"] == 29.0 and out["n_invalid"] == 0
