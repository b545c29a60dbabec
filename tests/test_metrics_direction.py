"""Up-move probability scores: sklearn cross-checks, Murphy's identity, climatology without look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss
from sklearn.metrics import log_loss as sk_log_loss

from kronos_quant.metrics import (
    brier_decomposition,
    brier_score,
    climatology_prob_up,
    directional_accuracy_test,
    hac_mean_test,
    log_loss,
    probability_scores,
    reliability_curve,
    up_outcomes,
)

DATES = pd.bdate_range("2021-01-04", periods=300)


def _probs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = rng.uniform(0.2, 0.8, n)
    forecast = np.clip(0.5 + 1.6 * (true - 0.5) + rng.normal(0, 0.05, n), 0.01, 0.99)  # overconfident
    return forecast, (rng.random(n) < true).astype(float)


def test_brier_and_log_loss_match_sklearn() -> None:
    p, o = _probs(2000, 0)
    assert brier_score(p, o) == pytest.approx(brier_score_loss(o, p), rel=1e-12)
    assert log_loss(p, o) == pytest.approx(sk_log_loss(o, p), rel=1e-12)
    p_nan, o_nan = p.copy(), o.copy()
    p_nan[3], o_nan[7] = np.nan, np.nan
    keep = np.isfinite(p_nan) & np.isfinite(o_nan)
    assert brier_score(p_nan, o_nan) == pytest.approx(brier_score_loss(o[keep], p[keep]))
    assert np.isnan(brier_score([np.nan], [1.0])) and np.isnan(log_loss([], []))
    assert log_loss([0.0], [1.0]) == pytest.approx(-np.log(1e-15))  # clipped, finite
    with pytest.raises(ValueError, match="0/1"):
        brier_score([0.5], [0.3])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        log_loss([1.5], [1.0])


def test_reliability_curve_matches_sklearn_calibration_curve() -> None:
    p, o = _probs(3000, 1)
    curve = reliability_curve(p, o, n_bins=10)
    true, pred = calibration_curve(o, p, n_bins=10, strategy="uniform")
    nonempty = np.array(curve["count"]) > 0
    np.testing.assert_allclose(np.array(curve["observed_frequency"])[nonempty], true, rtol=1e-12)
    np.testing.assert_allclose(np.array(curve["mean_forecast"])[nonempty], pred, rtol=1e-12)
    assert sum(curve["count"]) == 3000 and curve["bin_lower"][0] == 0.0 and curve["bin_upper"][-1] == 1.0
    # edges belong to the lower bin, as in sklearn: 0.5 falls in (0.4, 0.5]
    assert reliability_curve([0.5], [1.0], n_bins=10)["count"][4] == 1


def test_murphy_decomposition_identities() -> None:
    p, o = _probs(5000, 2)
    d = brier_decomposition(p, o, n_bins=10)
    total = d["reliability"] - d["resolution"] + d["uncertainty"] + d["within_bin_variance"] - d["within_bin_covariance"]
    assert total == pytest.approx(d["brier"], rel=1e-12)
    assert d["uncertainty"] == pytest.approx(o.mean() * (1 - o.mean()))
    assert d["brier"] == pytest.approx(brier_score_loss(o, p))
    # prob_up from S = 8 samples takes values k/8; with 16 bins every bin holds one value -> REL - RES + UNC
    rng = np.random.default_rng(3)
    k8 = rng.integers(0, 9, 4000) / 8
    outcome = (rng.random(4000) < 0.3 + 0.4 * k8).astype(float)
    e = brier_decomposition(k8, outcome, n_bins=16)
    assert e["within_bin_variance"] == pytest.approx(0.0, abs=1e-15)
    assert e["within_bin_covariance"] == pytest.approx(0.0, abs=1e-15)
    assert e["reliability"] - e["resolution"] + e["uncertainty"] == pytest.approx(e["brier"], rel=1e-12)


def test_decomposition_hand_example() -> None:
    # two bins: forecasts 0.2 (outcomes 0, 0, 1) and 0.8 (outcomes 1, 1, 0, 1); base rate 4/7
    p = np.array([0.2, 0.2, 0.2, 0.8, 0.8, 0.8, 0.8])
    o = np.array([0, 0, 1, 1, 1, 0, 1.0])
    d = brier_decomposition(p, o, n_bins=2)
    base = 4 / 7
    assert d["reliability"] == pytest.approx((3 * (0.2 - 1 / 3) ** 2 + 4 * (0.8 - 0.75) ** 2) / 7)
    assert d["resolution"] == pytest.approx((3 * (1 / 3 - base) ** 2 + 4 * (0.75 - base) ** 2) / 7)
    assert d["uncertainty"] == pytest.approx(base * (1 - base))
    assert d["n"] == 7 and brier_decomposition([], [])["n"] == 0


def test_up_outcomes() -> None:
    frame = pd.DataFrame({"a": [0.01, 0.0, -0.02, np.nan]})
    np.testing.assert_array_equal(up_outcomes(frame)["a"].to_numpy(), [1.0, 0.0, 0.0, np.nan])
    np.testing.assert_array_equal(up_outcomes(np.array([0.1, np.nan])), [1.0, np.nan])


def _prices(seed: int = 0, n: int = 300, cols: str = "ABC") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0.0005, 0.01, (n, len(cols))), axis=0)),
                        index=DATES[:n], columns=list(cols))


def test_climatology_hand_example_and_no_look_ahead() -> None:
    prices = pd.DataFrame({"A": [1.0, 2.0, 1.5, 1.8, 1.7, 1.9]}, index=DATES[:6])
    clim = climatology_prob_up(prices, horizon=1, window=3, min_periods=2)
    # up moves known at t: t1 up, t2 down, t3 up, t4 down, t5 up
    np.testing.assert_allclose(clim["A"].to_numpy(), [np.nan, np.nan, 0.5, 2 / 3, 1 / 3, 2 / 3])
    two = climatology_prob_up(prices, horizon=2, window=3, min_periods=1)
    # 2-bar moves known at t (price[t] > price[t-2]): t2 up (1.5 > 1), t3 down, t4 up, t5 up
    np.testing.assert_allclose(two["A"].to_numpy(), [np.nan, np.nan, 1.0, 0.5, 2 / 3, 2 / 3])
    wide = _prices()
    base = climatology_prob_up(wide, horizon=5, window=60)
    future = wide.copy()
    future.iloc[150:] *= np.random.default_rng(9).lognormal(0, 0.2, future.iloc[150:].shape)
    pd.testing.assert_frame_equal(climatology_prob_up(future, horizon=5, window=60).iloc[:150], base.iloc[:150])


def test_climatology_own_bars_pooled_and_long_panel() -> None:
    wide = _prices(1)
    wide.iloc[100:110, 0] = np.nan  # instrument A does not trade for 10 bars
    clim = climatology_prob_up(wide, horizon=5, window=60)
    own = wide["A"].dropna()
    expected = ((own / own.shift(5) - 1) > 0).astype(float).where(own.shift(5).notna()).rolling(60, min_periods=20).mean()
    pd.testing.assert_series_equal(clim["A"].dropna(), expected.dropna(), check_names=False)
    assert clim["A"].iloc[100:110].isna().all()
    pooled = climatology_prob_up(wide, horizon=5, window=60, pooled=True)
    row = pooled.iloc[200]
    assert row.nunique() == 1  # one value shared across instruments
    ups = pd.concat([((wide[c].dropna() / wide[c].dropna().shift(5) - 1) > 0).astype(float)
                     .where(wide[c].dropna().shift(5).notna()) for c in wide.columns], axis=1).reindex(wide.index)
    window = ups.iloc[141:201]
    assert row.iloc[0] == pytest.approx(np.nansum(window.to_numpy()) / window.notna().to_numpy().sum())
    long = wide.stack().rename("close").reset_index().rename(columns={"level_0": "timestamp", "level_1": "instrument"})
    from_long = climatology_prob_up(long, horizon=5, window=60)
    np.testing.assert_array_equal(from_long.to_numpy(), clim.to_numpy())
    assert list(from_long.index) == list(clim.index) and list(from_long.columns) == list(clim.columns)


def test_directional_accuracy_test_hand_built() -> None:
    rng = np.random.default_rng(4)
    fwd = pd.DataFrame(rng.normal(0, 0.01, (120, 6)), index=DATES[:120], columns=list("ABCDEF"))
    prob = pd.DataFrame(rng.uniform(0.05, 0.95, fwd.shape), index=fwd.index, columns=fwd.columns)
    prob.iloc[0, :3] = 0.5  # no call
    out = directional_accuracy_test(prob, fwd, horizon=5)
    calls = np.where(prob > 0.5, 1.0, np.where(prob < 0.5, 0.0, np.nan))
    hits = np.where(np.isnan(calls), np.nan, calls == (fwd.to_numpy() > 0))
    daily = np.nanmean(hits, axis=1)
    expected = hac_mean_test(daily, horizon=5, null=0.5)
    assert out["n_abstain"] == 3 and out["n_cells"] == 120 * 6 - 3 and out["nw_lags"] == 4
    assert out["accuracy"] == pytest.approx(np.nanmean(hits))
    assert out["t_stat"] == pytest.approx(expected["t_stat"]) and out["p_value"] == pytest.approx(expected["p_value"])
    perfect = directional_accuracy_test((fwd > 0).astype(float) * 0.8 + 0.1, fwd, horizon=1)
    assert perfect["accuracy"] == 1.0
    vs = directional_accuracy_test(prob, fwd, horizon=5, baseline_prob=(fwd > 0).astype(float) * 0.8 + 0.1)["vs_baseline"]
    assert vs["accuracy_baseline"] == 1.0 and vs["difference"] < 0 and vs["p_value"] < 1e-6


def test_probability_scores_on_shared_cells() -> None:
    rng = np.random.default_rng(5)
    fwd = pd.DataFrame(rng.normal(0, 0.01, (200, 5)), index=DATES[:200], columns=list("ABCDE"))
    clim = pd.DataFrame(0.5, index=fwd.index, columns=fwd.columns)
    clim.iloc[:20] = np.nan  # climatology needs history: those cells leave the model's score too
    skilled = (0.5 + 0.3 * np.sign(fwd) + rng.normal(0, 0.05, fwd.shape)).clip(0.01, 0.99)
    out = probability_scores(skilled, fwd, climatology=clim, horizon=5)
    assert out["n"] == 180 * 5
    cells = fwd.iloc[20:].to_numpy().ravel()
    assert out["model"]["brier"] == pytest.approx(brier_score(skilled.iloc[20:].to_numpy().ravel(), (cells > 0) * 1.0))
    assert out["climatology"]["brier"] == pytest.approx(0.25)
    assert out["brier_skill_score"] > 0.5 and out["dm_brier"]["dm_stat"] < 0 and out["dm_brier"]["lags"] == 4
    assert out["model"]["decomposition"]["n"] == 900 and len(out["model"]["reliability"]["count"]) == 10
    alone = probability_scores(skilled, fwd)
    assert alone["n"] == 1000 and "climatology" not in alone
