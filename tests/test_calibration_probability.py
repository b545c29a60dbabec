"""Walk-forward recalibration of prob_up: fixes overconfidence, never reads a future outcome."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression

from kronos_quant.calibration import (
    fit_prob_calibrator,
    prob_outcomes,
    prob_up_report,
    recalibrate_prob_up_walk_forward,
)
from kronos_quant.errors import DataError

N_INSTRUMENTS, N_ASOF, STEPS = 5, 240, (1, 2, 3)


def _table(seed: int = 0) -> pd.DataFrame:
    """One row per as-of x instrument x step; prob_up is overconfident: logit stretched x2.5."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=N_ASOF + max(STEPS))
    i, inst, step = (
        a.ravel() for a in np.meshgrid(np.arange(N_ASOF), np.arange(N_INSTRUMENTS), STEPS, indexing="ij")
    )
    true = rng.uniform(0.3, 0.7, i.size)
    logit = np.log(true / (1 - true))
    up = rng.random(i.size) < true
    return pd.DataFrame(
        {
            "instrument": [f"I{k}" for k in inst],
            "asof": dates[i],
            "step": step,
            "target_timestamp": dates[i + step],
            "last_close": 100.0,
            "prob_up": 1 / (1 + np.exp(-2.5 * logit)),
            "actual_close": np.where(up, 101.0, 99.0),
        }
    )


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_recalibration_fixes_overconfidence(method: str) -> None:
    out = recalibrate_prob_up_walk_forward(_table(), method=method, min_history=100, refit_every=4)
    assert list(out.index) == list(range(len(out))) and "prob_up_cal" in out and "prob_up_cal_n" in out
    report = prob_up_report(out)
    before, after = report["before"], report["after"]
    assert report["n"] > 0.8 * len(out)
    assert after["brier"] < before["brier"] and after["log_loss"] < before["log_loss"]
    assert after["decomposition"]["reliability"] < 0.3 * before["decomposition"]["reliability"]


def test_uses_only_outcomes_known_at_each_asof() -> None:
    table = _table(1)
    base = recalibrate_prob_up_walk_forward(table, min_history=60, refit_every=3)
    cut = table["asof"].drop_duplicates().sort_values().iloc[150]
    future = table["target_timestamp"] > cut
    noisy = table.copy()
    noisy.loc[future, "actual_close"] = np.where(np.random.default_rng(2).random(future.sum()) < 0.5, 90.0, 110.0)
    changed = recalibrate_prob_up_walk_forward(noisy, min_history=60, refit_every=3)
    past = table["asof"] <= cut
    pd.testing.assert_series_equal(changed.loc[past, "prob_up_cal"], base.loc[past, "prob_up_cal"])
    pd.testing.assert_series_equal(changed.loc[past, "prob_up_cal_n"], base.loc[past, "prob_up_cal_n"])
    assert not np.allclose(changed.loc[~past, "prob_up_cal"], base.loc[~past, "prob_up_cal"])  # the test can fail


def test_one_row_reproduced_by_hand() -> None:
    table = _table(3)
    out = recalibrate_prob_up_walk_forward(table, min_history=50, window=200)
    row = out[(out["step"] == 2) & (out["instrument"] == "I3")].iloc[100]
    pool = table[(table["step"] == 2) & (table["target_timestamp"] <= row["asof"])]
    pool = pool.sort_values(["target_timestamp", "asof"], kind="stable").iloc[-200:]
    iso = IsotonicRegression(y_min=1 / 202, y_max=1 - 1 / 202, out_of_bounds="clip").fit(
        pool["prob_up"], (pool["actual_close"] > pool["last_close"]).astype(float)
    )
    assert row["prob_up_cal_n"] == 200
    assert row["prob_up_cal"] == pytest.approx(iso.predict([row["prob_up"]])[0])


def test_too_little_history_or_one_class_keeps_the_raw_value() -> None:
    table = _table(4)
    out = recalibrate_prob_up_walk_forward(table, min_history=100)
    early = out["asof"] == out["asof"].min()
    assert (out.loc[early, "prob_up_cal_n"] == 0).all()
    np.testing.assert_array_equal(out.loc[early, "prob_up_cal"], out.loc[early, "prob_up"])
    always_up = table.assign(actual_close=105.0)
    flat = recalibrate_prob_up_walk_forward(always_up, min_history=20)
    np.testing.assert_array_equal(flat["prob_up_cal"], flat["prob_up"])
    assert (flat["prob_up_cal_n"] == 0).all()
    assert fit_prob_calibrator([0.2, 0.6], [1.0, 1.0]) is None
    unknown = table.assign(actual_close=np.nan)
    assert (recalibrate_prob_up_walk_forward(unknown, min_history=2)["prob_up_cal_n"] == 0).all()


def test_outcome_column_and_errors() -> None:
    table = _table(5)
    with_outcome = table.assign(up=(table["actual_close"] > table["last_close"]).astype(float)).drop(columns="actual_close")
    a = recalibrate_prob_up_walk_forward(with_outcome, outcome_col="up", min_history=80)
    b = recalibrate_prob_up_walk_forward(table, min_history=80)
    np.testing.assert_allclose(a["prob_up_cal"], b["prob_up_cal"])
    np.testing.assert_array_equal(prob_outcomes(table), with_outcome["up"].to_numpy())
    with pytest.raises(DataError, match="lacks column"):
        recalibrate_prob_up_walk_forward(table.drop(columns="target_timestamp"))
    with pytest.raises(ValueError, match="method"):
        fit_prob_calibrator([0.1, 0.9], [0.0, 1.0], method="beta")
    with pytest.raises(ValueError, match="0/1"):
        prob_outcomes(table.assign(up=0.5), outcome_col="up")


def test_fits_on_tied_probabilities_match_fits_on_the_raw_rows() -> None:
    """prob_up from 8 samples takes values k/8; fitting on (value, #up, #down) counts is exact."""
    sm = pytest.importorskip("statsmodels.api", reason="statsmodels (dev extra) is needed for the Logit cross-check")
    rng = np.random.default_rng(6)
    p = rng.integers(1, 8, 3000) / 8
    o = (rng.random(3000) < 0.5 + 0.5 * (p - 0.5)).astype(float)
    grid = np.arange(1, 8) / 8
    iso = IsotonicRegression(y_min=1 / 3002, y_max=1 - 1 / 3002, out_of_bounds="clip").fit(p, o)
    np.testing.assert_allclose(fit_prob_calibrator(p, o, method="isotonic")(grid), iso.predict(grid), rtol=1e-12)
    logit = np.log(p / (1 - p))
    params = sm.Logit(o, sm.add_constant(logit)).fit(disp=0).params
    expected = 1 / (1 + np.exp(-(params[0] + params[1] * np.log(grid / (1 - grid)))))
    np.testing.assert_allclose(fit_prob_calibrator(p, o, method="platt")(grid), expected, atol=2e-4)
