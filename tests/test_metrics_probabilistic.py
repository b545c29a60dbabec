"""Probabilistic scores: CRPS against brute force and closed forms, pinball vs sklearn, PIT."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import mean_pinball_loss

from kronos_quant.metrics import (
    crps_ensemble,
    interval_coverage,
    interval_metrics_from_samples,
    interval_score,
    pinball_loss,
    pit_histogram,
    pit_values,
)


def _crps_brute_force(samples: np.ndarray, obs: np.ndarray, fair: bool) -> np.ndarray:
    out = []
    for x, y in zip(samples, obs):
        x = x[np.isfinite(x)]
        s = x.size
        pair = np.abs(x[:, None] - x[None, :]).sum()  # O(S^2)
        out.append(np.abs(x - y).mean() - pair / (2 * (s * (s - 1) if fair else s * s)))
    return np.array(out)


def test_crps_hand_example() -> None:
    # members {0, 2}, y = 1: E|X - y| = 1, sum_ij |Xi - Xj| = 4
    assert crps_ensemble([[0.0, 2.0]], [1.0], fair=False)[0] == pytest.approx(1 - 4 / 8)
    assert crps_ensemble([[0.0, 2.0]], [1.0], fair=True)[0] == pytest.approx(1 - 4 / 4)


@pytest.mark.parametrize("fair", [True, False])
def test_crps_matches_brute_force(fair: bool) -> None:
    rng = np.random.default_rng(0)
    samples = rng.normal(100, 5, size=(30, 9))
    samples[3, 4] = samples[3, 5]  # a tie
    samples[7, [0, 8]] = np.nan  # a ragged row
    obs = rng.normal(100, 5, size=30)
    np.testing.assert_allclose(
        crps_ensemble(samples, obs, fair=fair), _crps_brute_force(samples, obs, fair), rtol=1e-10, atol=1e-10
    )


def test_crps_degenerate_and_edge_cases() -> None:
    samples = np.full((3, 5), 2.0)
    obs = np.array([2.0, 5.0, -1.0])
    for fair in (True, False):
        np.testing.assert_allclose(crps_ensemble(samples, obs, fair=fair), np.abs(2.0 - obs), atol=1e-12)
    single = crps_ensemble([[3.0]], [1.0], fair=False)
    assert single[0] == pytest.approx(2.0)
    assert np.isnan(crps_ensemble([[3.0]], [1.0], fair=True)[0])
    out = crps_ensemble([[np.nan, np.nan], [1.0, 2.0]], [0.0, np.nan])
    assert np.isnan(out).all()
    with pytest.raises(ValueError, match=r"\(N,\)"):
        crps_ensemble(np.zeros((3, 4)), np.zeros(2))


def test_crps_large_ensemble_approaches_gaussian_closed_form() -> None:
    s = 2000
    members = stats.norm.ppf((np.arange(s) + 0.5) / s)  # a quasi-exact N(0, 1) ensemble
    obs = np.array([-2.0, 0.0, 0.7, 3.0])
    closed = obs * (2 * stats.norm.cdf(obs) - 1) + 2 * stats.norm.pdf(obs) - 1 / np.sqrt(np.pi)
    got = crps_ensemble(np.tile(members, (obs.size, 1)), obs, fair=False)
    np.testing.assert_allclose(got, closed, atol=2e-3)


def test_pinball_hand_example_and_sklearn() -> None:
    preds = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(pinball_loss(preds, [2.0, 2.0], [0.1, 0.9]), [0.5, 0.1])
    rng = np.random.default_rng(1)
    levels = np.array([0.05, 0.5, 0.95])
    obs = rng.normal(size=40)
    q = np.sort(rng.normal(size=(40, 3)), axis=1)
    expected = [mean_pinball_loss(obs, q[:, j], alpha=a) for j, a in enumerate(levels)]
    np.testing.assert_allclose(pinball_loss(q, obs, levels), expected)
    with pytest.raises(ValueError, match="between 0 and 1"):
        pinball_loss(q, obs, [0.0, 0.5, 1.0])


def test_interval_coverage_and_score_hand_example() -> None:
    out = interval_coverage([0, 0, 0, np.nan], [1, 2, 3, 1], [0.5, 2.0, 4.0, 0.5])
    assert out == {"coverage": pytest.approx(2 / 3), "mean_width": pytest.approx(2.0), "n": 3}
    assert interval_score([0, 0], [1, 1], [2.0, 0.5], level=0.8) == pytest.approx((11 + 1) / 2)
    with pytest.raises(ValueError, match="lower > upper"):
        interval_coverage([2.0], [1.0], [1.5])


def test_interval_metrics_from_samples() -> None:
    samples = np.tile(np.arange(101.0), (2, 1))  # central 90% interval = [5, 95], 50% = [25, 75]
    out = interval_metrics_from_samples(samples, [50.0, 97.0], levels=(0.5, 0.9))
    assert out["coverage_90"] == pytest.approx(0.5) and out["mean_width_90"] == pytest.approx(90.0)
    assert out["coverage_50"] == pytest.approx(0.5) and out["mean_width_50"] == pytest.approx(50.0)
    assert out["interval_score_90"] == pytest.approx(90 + 0.5 * (2 / 0.1) * 2)


def test_pit_hand_examples() -> None:
    pit = pit_values([[1, 2, 3], [1, 2, 3], [1, 1, 1]], [2.5, 0.0, 1.0], rng=0)
    assert 0.5 <= pit[0] <= 0.75 and 0.0 <= pit[1] <= 0.25 and 0.0 <= pit[2] <= 1.0
    np.testing.assert_array_equal(pit, pit_values([[1, 2, 3], [1, 2, 3], [1, 1, 1]], [2.5, 0.0, 1.0], rng=0))
    assert np.isnan(pit_values([[1.0, 2.0]], [np.nan])[0])


@pytest.mark.parametrize("discrete", [False, True])
def test_pit_uniform_for_calibrated_ensemble(discrete: bool) -> None:
    rng = np.random.default_rng(3)
    draw = (
        (lambda size: rng.poisson(2.0, size).astype(float))
        if discrete
        else (lambda size: rng.normal(size=size))
    )
    samples, obs = draw((4000, 9)), draw(4000)  # members and outcome from the same law; ties when discrete
    counts, edges = pit_histogram(pit_values(samples, obs, rng=rng), n_bins=10)
    assert counts.sum() == 4000 and edges[0] == 0.0 and edges[-1] == 1.0
    assert stats.chisquare(counts).pvalue > 1e-3
    narrow_counts, _ = pit_histogram(pit_values(0.3 * draw((4000, 9)), obs, rng=rng))
    assert stats.chisquare(narrow_counts).pvalue < 1e-6  # an under-dispersed ensemble is detected


def test_pit_histogram_hand_example() -> None:
    counts, edges = pit_histogram([0.05, 0.15, 0.15, 0.95, np.nan], n_bins=10)
    np.testing.assert_array_equal(counts, [1, 2, 0, 0, 0, 0, 0, 0, 0, 1])
    assert edges.shape == (11,)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pit_histogram([1.5])
