"""Walk-forward conformal recalibration: no look-ahead, and coverage back to nominal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kronos_quant.calibration import (
    ConformalRecalibrator,
    conformal_quantile,
    conformity_scores,
    coverage_report,
    interval_columns,
    recalibrate_walk_forward,
)
from kronos_quant.errors import DataError
from kronos_quant.schema import DEFAULT_QUANTILES, quantile_column

N_INSTRUMENTS, N_ASOF, STEPS = 4, 220, (1, 2, 3)


def _forecast_table(*, narrowness: float = 0.5, seed: int = 0, with_samples: bool = False) -> pd.DataFrame:
    """Synthetic forecast table whose quantiles are ``narrowness`` times too narrow.

    Outcome: last * (1 + sigma sqrt(step) eps), eps ~ N(0, 1); forecast: Normal with the right
    median but a standard deviation scaled by ``narrowness``.
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=N_ASOF + max(STEPS))
    i, inst, step = (
        a.ravel() for a in np.meshgrid(np.arange(N_ASOF), np.arange(N_INSTRUMENTS), STEPS, indexing="ij")
    )  # one row per as-of x instrument x step
    last = 50.0 * (inst + 1) * (1 + 0.1 * np.sin(i / 20))
    sd = 0.01 * np.sqrt(step) * last
    table = pd.DataFrame(
        {
            "instrument": [f"I{k}" for k in inst],
            "asof": dates[i],
            "step": step,
            "target_timestamp": dates[i + step],
            "last_close": last,
            "close_median": last,
            "actual_close": last + sd * rng.standard_normal(i.size),
        }
    )
    for q in DEFAULT_QUANTILES:
        table[quantile_column("close", q)] = last + narrowness * sd * stats.norm.ppf(q)
    if with_samples:
        paths = last[:, None] + narrowness * sd[:, None] * rng.standard_normal((i.size, 30))
        table["close_samples"] = list(paths)
    return table


def test_conformal_pieces_hand_example() -> None:
    lower, upper, center = np.full(4, 9.0), np.full(4, 11.0), np.full(4, 10.0)
    obs = np.array([10.5, 12.0, 8.0, 10.0])
    np.testing.assert_allclose(conformity_scores(lower, upper, center, obs), [0.5, 2.0, 2.0, 0.0])
    np.testing.assert_allclose(
        conformity_scores(lower, upper, center, obs, method="shift", scale=2.0), [-0.25, 0.5, 0.5, -0.5]
    )
    assert conformal_quantile([0.0, 0.5, 2.0, 2.0], 0.5) == 2.0  # ceil(5 * 0.5) = 3rd smallest
    assert conformal_quantile([3.0, 1.0, 2.0], 0.9) == 3.0  # rank capped at n
    assert conformal_quantile([1.0, 2.0, 3.0, 4.0, np.nan], 0.5) == 3.0
    fitted = ConformalRecalibrator(level=0.5).fit(lower, upper, center, obs)
    assert fitted.factor_ == 2.0 and fitted.n_ == 4
    lo, hi = fitted.transform([9.0], [12.0], [10.0])
    np.testing.assert_allclose([lo[0], hi[0]], [8.0, 14.0])  # each half scaled around the median
    with pytest.raises(ValueError, match="not fitted"):
        ConformalRecalibrator().transform([1.0], [2.0], [1.5])


@pytest.mark.parametrize("method", ["scale", "shift"])
def test_recalibration_restores_nominal_coverage(method: str) -> None:
    table = recalibrate_walk_forward(_forecast_table(), levels=(0.5, 0.9), method=method, min_history=40)
    report = coverage_report(table, levels=(0.5, 0.9))
    for level, entry in report.items():
        assert entry["n"] > 2000
        assert entry["coverage_before"] < level - 0.15  # the raw intervals are far too narrow
        assert abs(entry["coverage_after"] - level) < 0.035, entry
        assert entry["mean_rel_width_after"] > entry["mean_rel_width_before"]


def test_recalibration_narrows_too_wide_intervals() -> None:
    table = recalibrate_walk_forward(_forecast_table(narrowness=2.0, seed=1), levels=(0.9,), min_history=40)
    entry = coverage_report(table, levels=(0.9,))[0.9]
    assert entry["coverage_before"] > 0.99
    assert abs(entry["coverage_after"] - 0.9) < 0.035
    assert entry["mean_width_after"] < entry["mean_width_before"]


def test_no_outcome_unknown_at_fitting_time_is_used() -> None:
    table = _forecast_table(seed=2)
    cutoff = table["asof"].sort_values().unique()[150]
    poisoned = table.copy()
    future = poisoned["target_timestamp"] > cutoff
    poisoned.loc[future, "actual_close"] = 1e12  # outcomes not yet known at the cutoff
    kwargs = {"levels": (0.5, 0.9), "min_history": 20, "window": 300}
    clean, dirty = recalibrate_walk_forward(table, **kwargs), recalibrate_walk_forward(poisoned, **kwargs)
    cal_cols = [c for c in clean.columns if "_cal" in c]
    early = clean["asof"] <= cutoff
    assert clean.loc[early, "close_cal_factor_90"].notna().any()
    pd.testing.assert_frame_equal(clean.loc[early, cal_cols], dirty.loc[early, cal_cols])
    assert not np.allclose(clean.loc[~early, "close_cal_factor_90"], dirty.loc[~early, "close_cal_factor_90"])


def test_factor_equals_refit_on_known_outcomes_only() -> None:
    table = _forecast_table(seed=3)
    window = 250
    out = recalibrate_walk_forward(table, levels=(0.9,), min_history=30, window=window)
    row = out[(out["step"] == 3) & (out["asof"] == out["asof"].unique()[120])].iloc[0]
    past = table[(table["step"] == 3) & (table["target_timestamp"] <= row["asof"])]
    past = past.sort_values(["target_timestamp", "asof"], kind="stable").tail(window)
    refit = ConformalRecalibrator(level=0.9).fit(
        past["close_q5"], past["close_q95"], past["close_median"], past["actual_close"]
    )
    assert row["close_cal_factor_90"] == pytest.approx(refit.factor_)
    assert row["close_cal_n_90"] == len(past) == window


def test_min_history_keeps_raw_intervals() -> None:
    table = recalibrate_walk_forward(_forecast_table(seed=4), levels=(0.9,), min_history=40)
    lo_raw, hi_raw = interval_columns("close", 0.9, calibrated=False)
    lo_cal, hi_cal = interval_columns("close", 0.9, calibrated=True)
    first = table[table["asof"] == table["asof"].min()]
    assert first["close_cal_factor_90"].isna().all() and (first["close_cal_n_90"] == 0).all()
    pd.testing.assert_series_equal(first[lo_raw], first[lo_cal], check_names=False)
    pd.testing.assert_series_equal(first[hi_raw], first[hi_cal], check_names=False)
    np.testing.assert_allclose(first[lo_raw], first["close_q5"])


def test_samples_column_and_zero_width_intervals() -> None:
    base = _forecast_table(seed=5, with_samples=True)
    from_samples = base.drop(columns=[c for c in base.columns if c.startswith("close_q")])
    entry = coverage_report(
        recalibrate_walk_forward(from_samples, levels=(0.9,), min_history=40), levels=(0.9,)
    )[0.9]
    assert entry["coverage_before"] < 0.75 and abs(entry["coverage_after"] - 0.9) < 0.035
    point = base.drop(columns=["close_samples"])
    for q in DEFAULT_QUANTILES:
        point[quantile_column("close", q)] = point["close_median"]  # a single path: zero-width intervals
    entry = coverage_report(
        recalibrate_walk_forward(point, levels=(0.9,), method="shift", min_history=40), levels=(0.9,)
    )[0.9]
    assert entry["coverage_before"] < 0.01 and abs(entry["coverage_after"] - 0.9) < 0.035


def test_time_zone_aware_columns_and_errors() -> None:
    table = _forecast_table(seed=6).head(600)
    aware = table.assign(
        asof=table["asof"].dt.tz_localize("UTC"),
        target_timestamp=table["target_timestamp"].dt.tz_localize("UTC"),
    )
    cols = ["close_lower_90_cal", "close_upper_90_cal"]
    pd.testing.assert_frame_equal(
        recalibrate_walk_forward(aware, levels=(0.9,), min_history=10)[cols],
        recalibrate_walk_forward(table, levels=(0.9,), min_history=10)[cols],
    )
    with pytest.raises(DataError, match="both be time-zone aware"):
        recalibrate_walk_forward(aware.assign(asof=table["asof"]), levels=(0.9,))
    with pytest.raises(DataError, match="actual_close"):
        recalibrate_walk_forward(table.drop(columns=["actual_close"]))
    with pytest.raises(DataError, match="close_q2.5"):
        recalibrate_walk_forward(table, levels=(0.95,))
    with pytest.raises(ValueError, match="method"):
        recalibrate_walk_forward(table, method="quantile")
