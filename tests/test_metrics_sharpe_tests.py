"""Probabilistic and deflated Sharpe ratios: the DSR paper's worked example and scipy formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from kronos_quant.metrics import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    psr_from_moments,
    sharpe_moments,
    sharpe_ratio,
)


def test_deflated_sharpe_paper_example() -> None:
    """Bailey & Lopez de Prado (2014), numerical example: N = 100 trials whose annualised Sharpe
    ratios have variance 1/2, best annualised SR 2.5 over T = 1250 daily returns (250 a year),
    skewness -3, kurtosis 10. The paper reports SR0 ~ 0.1132 (per period) and DSR ~ 0.9004."""
    sr0 = expected_max_sharpe(n_trials=100, trial_sharpe_variance=0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = psr_from_moments(sharpe=2.5 / math.sqrt(250), n=1250, skew=-3.0, kurtosis=10.0, benchmark_sharpe=sr0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_expected_max_sharpe_against_simulation() -> None:
    """The false-strategy theorem's approximation of E[max of N N(0, V)] is within ~1-2% for N >= 10."""
    rng = np.random.default_rng(0)
    for n_trials in (10, 100, 1000):
        simulated = rng.standard_normal((4000, n_trials)).max(axis=1).mean() * 0.3
        assert expected_max_sharpe(n_trials=n_trials, trial_sharpe_variance=0.09) == pytest.approx(simulated, rel=0.03)
    assert expected_max_sharpe(n_trials=1, trial_sharpe_variance=1.0) == 0.0
    with pytest.raises(ValueError, match="n_trials"):
        expected_max_sharpe(n_trials=0, trial_sharpe_variance=1.0)


def test_psr_matches_an_independent_scipy_computation() -> None:
    rng = np.random.default_rng(1)
    r = stats.skewnorm.rvs(-4, loc=0.002, scale=0.01, size=500, random_state=rng)
    out = probabilistic_sharpe_ratio(r, benchmark_sharpe=0.5)
    sr = r.mean() / r.std(ddof=1)
    g3, g4 = stats.skew(r), stats.kurtosis(r, fisher=False)
    z = (sr - 0.5 / math.sqrt(252)) * math.sqrt(len(r) - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert out["psr"] == pytest.approx(stats.norm.cdf(z), rel=1e-12)
    assert out["sharpe"] == pytest.approx(sharpe_ratio(r))
    assert (out["skew"], out["kurtosis"]) == pytest.approx((g3, g4))
    assert out["reason"] is None
    assert probabilistic_sharpe_ratio(r, benchmark_sharpe=2.0)["psr"] < out["psr"]  # a higher bar is harder


def test_psr_against_zero_is_close_to_the_t_test_for_normal_returns() -> None:
    r = np.random.default_rng(2).normal(0.0005, 0.01, 1000)
    one_sided = stats.ttest_1samp(r, 0.0, alternative="greater").pvalue
    assert probabilistic_sharpe_ratio(r)["psr"] == pytest.approx(1 - one_sided, abs=0.01)


def test_deflated_sharpe_ratio_from_returns() -> None:
    r = np.random.default_rng(3).normal(0.001, 0.01, 750)
    single = deflated_sharpe_ratio(r, n_trials=1, trial_sharpe_variance=0.5)
    assert single["dsr"] == pytest.approx(probabilistic_sharpe_ratio(r)["psr"])
    many = deflated_sharpe_ratio(r, n_trials=50, trial_sharpe_variance=0.5)
    assert many["dsr"] < single["dsr"]
    expected = expected_max_sharpe(n_trials=50, trial_sharpe_variance=0.5 / 252) * math.sqrt(252)
    assert many["expected_max_sharpe"] == pytest.approx(expected)
    assert many["dsr"] == pytest.approx(probabilistic_sharpe_ratio(r, benchmark_sharpe=expected)["psr"])
    default = deflated_sharpe_ratio(r, n_trials=50)
    assert default["trial_sharpe_variance"] == pytest.approx(252 / 749)
    assert default["trial_sharpe_variance_source"].startswith("null sampling variance")


def test_short_or_degenerate_returns_give_nan_with_a_reason() -> None:
    assert np.isnan(sharpe_moments([0.01, 0.02])["sharpe"])
    out = probabilistic_sharpe_ratio([0.01, np.nan, 0.02])
    assert np.isnan(out["psr"]) and "at least 3" in out["reason"]
    flat = deflated_sharpe_ratio(np.full(20, 0.001), n_trials=5)
    assert np.isnan(flat["dsr"]) and flat["reason"]
    assert np.isnan(psr_from_moments(sharpe=2.0, n=100, skew=5.0, kurtosis=3.0))  # variance term <= 0
