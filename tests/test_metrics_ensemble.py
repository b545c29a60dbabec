"""Finite-ensemble calibration: attainable coverage, rank histograms, size checks, CRPS vs scoringrules."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from kronos_quant.metrics import (
    attainable_coverage,
    check_ensemble_size,
    crps_ensemble,
    finite_sample_coverage,
    interval_metrics_from_samples,
    order_statistic_interval,
    rank_histogram,
)


def _calibrated(n: int, s: int, seed: int, *, spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Observations and S-member ensembles from the same N(mu_i, 1) law (spread != 1: miscalibrated)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 3.0, n)
    return mu[:, None] + spread * rng.standard_normal((n, s)), mu + rng.standard_normal(n)


def test_attainable_coverage_hand_values() -> None:
    eight = attainable_coverage(8, level=0.9)
    assert (eight["lower_rank"], eight["upper_rank"], eight["reachable"]) == (1, 8, False)
    assert eight["coverage"] == pytest.approx(7 / 9)
    twenty = attainable_coverage(20, level=0.9)
    assert (twenty["lower_rank"], twenty["upper_rank"], twenty["reachable"]) == (1, 20, True)
    assert twenty["coverage"] == pytest.approx(19 / 21)
    assert attainable_coverage(99, level=0.9)["coverage"] == pytest.approx(0.9)  # k = 5: 90 / 100
    assert attainable_coverage(8, level=0.5)["coverage"] == pytest.approx(5 / 9)  # k = 2
    with pytest.raises(ValueError, match="level"):
        attainable_coverage(8, level=90)


@pytest.mark.parametrize("s", [8, 20])
def test_calibrated_ensembles_attain_the_order_statistic_coverage(s: int) -> None:
    samples, obs = _calibrated(20000, s, seed=s)
    out = finite_sample_coverage(samples, obs, level=0.9)
    expected = attainable_coverage(s, level=0.9)["coverage"]
    se = np.sqrt(expected * (1 - expected) / 20000)
    assert out["attainable_coverage"] == pytest.approx(expected)
    assert abs(out["coverage"] - expected) < 3.5 * se
    assert abs(out["z"]) < 3.5 and out["reachable"] == (s == 20)


def test_interpolated_empirical_quantiles_under_cover_as_the_issue_says() -> None:
    """Issue 15: a perfectly calibrated forecast's 5%-95% empirical band covers ~0.70 with 8 samples
    and ~0.81 with 20 samples (np.quantile interpolation). Exact in PIT space (uniform draws):
    the 5% quantile of 8 samples is 0.65 X(1) + 0.35 X(2), expected PIT 1.35 / 9 = 0.15 -> 0.70;
    of 20 samples 0.05 X(1) + 0.95 X(2), 1.95 / 21 -> 0.814. (Interpolating in value space makes
    it distribution-dependent: ~0.72 for normal draws.)"""
    rng = np.random.default_rng(7)
    for s, expected in ((8, 1 - 2 * 1.35 / 9), (20, 1 - 2 * 1.95 / 21)):
        samples, obs = rng.random((20000, s)), rng.random(20000)
        got = interval_metrics_from_samples(samples, obs, levels=(0.9,))["coverage_90"]
        assert got == pytest.approx(expected, abs=0.01)  # 3 standard errors
        assert got < attainable_coverage(s, level=0.9)["coverage"]  # the order statistics do better


def test_too_narrow_ensembles_are_flagged() -> None:
    samples, obs = _calibrated(5000, 20, seed=1, spread=0.6)
    out = finite_sample_coverage(samples, obs, level=0.9)
    assert out["coverage_gap"] < -0.1 and out["p_value"] < 1e-6
    hist = rank_histogram(samples, obs, rng=0)
    assert hist["extreme_share"] > 2 * hist["expected_extreme_share"] and hist["p_value"] < 1e-6


def test_order_statistic_interval_ragged_rows() -> None:
    samples = np.array([[3.0, 1.0, 2.0, np.nan], [4.0, 1.0, 3.0, 2.0], [np.nan, 5.0, np.nan, np.nan]])
    lower, upper, coverage = order_statistic_interval(samples, level=0.5)
    # S = 3: k = floor(4 * .25) = 1 -> [1, 3], 2/4; S = 4: k = floor(5 * .25) = 1 -> [1, 4], 3/5; S = 1: NaN
    np.testing.assert_allclose(lower[:2], [1.0, 1.0])
    np.testing.assert_allclose(upper[:2], [3.0, 4.0])
    np.testing.assert_allclose(coverage[:2], [0.5, 0.6])
    assert np.isnan(lower[2]) and np.isnan(coverage[2])
    out = finite_sample_coverage(samples, np.array([2.0, 5.0, 5.0]), level=0.5)
    assert out["n"] == 2 and out["coverage"] == pytest.approx(0.5)
    assert (out["n_samples_min"], out["n_samples_max"]) == (3, 4)


def test_rank_histogram_is_flat_for_calibrated_ensembles_with_ties_broken_at_random() -> None:
    samples, obs = _calibrated(9000, 8, seed=2)
    hist = rank_histogram(samples, obs, rng=0)
    assert len(hist["counts"]) == 9 and sum(hist["counts"]) == 9000 and hist["n_samples"] == 8
    assert hist["p_value"] > 0.001
    # a discrete variable: many ties between the observation and members; random tie-breaking keeps it flat
    rng = np.random.default_rng(3)
    counts = rng.poisson(2.0, size=(9000, 8)).astype(float)
    hist_d = rank_histogram(counts, rng.poisson(2.0, size=9000).astype(float), rng=1)
    assert hist_d["p_value"] > 0.001
    tied = counts[:, 0].copy()  # always equal to member 0: only the tie-breaking decides its rank
    assert rank_histogram(counts, tied, rng=5) == rank_histogram(counts, tied, rng=5)  # seeded
    assert rank_histogram(counts, tied, rng=5)["counts"] != rank_histogram(counts, tied, rng=6)["counts"]


def test_rank_histogram_drops_rows_of_other_sizes() -> None:
    samples, obs = _calibrated(100, 8, seed=4)
    samples[:10, 0] = np.nan
    obs[10] = np.nan
    hist = rank_histogram(samples, obs)
    assert hist["n"] == 89 and hist["n_dropped"] == 11 and hist["n_samples"] == 8
    empty = rank_histogram(np.full((3, 4), np.nan), np.zeros(3))
    assert empty["n"] == 0 and empty["reason"]


def test_check_ensemble_size_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kronos_quant.metrics.ensemble"):
        small = check_ensemble_size(8, (0.05, 0.25, 0.5, 0.75, 0.95))
    assert not small["ok"] and small["unresolvable"] == [0.05, 0.95] and small["min_samples_needed"] == 19
    assert "cannot resolve" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kronos_quant.metrics.ensemble"):
        enough = check_ensemble_size(19, (0.05, 0.95))
    assert enough["ok"] and not caplog.text
    assert check_ensemble_size(8, (0.25, 0.75))["ok"]


def test_crps_matches_scoringrules() -> None:
    scoringrules = pytest.importorskip("scoringrules", reason="scoringrules (dev extra) is needed for this cross-check")
    samples, obs = _calibrated(300, 8, seed=5)
    samples[:5, -1] = np.nan  # ragged rows are scored on their own members
    for fair, estimator in ((True, "fair"), (False, "nrg")):
        ours = crps_ensemble(samples, obs, fair=fair)
        full = scoringrules.crps_ensemble(obs[5:], samples[5:], estimator=estimator)
        ragged = scoringrules.crps_ensemble(obs[:5], samples[:5, :-1], estimator=estimator)
        np.testing.assert_allclose(ours, np.concatenate([ragged, full]), rtol=1e-12, atol=1e-14)
