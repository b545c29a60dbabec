"""Synthetic markets: schema, OHLC consistency, determinism and the statistical properties of each mode."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from kronos_quant.data import PLANTED_WEIGHTS, check_panel, planted_signal, synthetic_market, validate_panel


def _returns(panel: pl.DataFrame) -> np.ndarray:
    """(n_bars - 1, n_instruments) close-to-close log returns."""
    wide = panel.pivot(on="instrument", index="timestamp", values="close").sort("timestamp").drop("timestamp")
    return np.diff(np.log(wide.to_numpy()), axis=0)


def _ic(panel: pl.DataFrame, strength: float = 0.2) -> float:
    sig = planted_signal(panel, strength=strength).drop_nulls()
    return float(np.corrcoef(sig["signal"].to_numpy(), sig["next_return"].to_numpy())[0, 1])


@pytest.fixture(scope="module")
def realistic() -> pl.DataFrame:
    return synthetic_market(20, 500, mode="realistic", seed=0)


def test_schema_consistency_and_determinism(realistic: pl.DataFrame) -> None:
    check_panel(realistic)
    assert realistic.height == 20 * 500 and realistic["instrument"].n_unique() == 20
    assert realistic["timestamp"].dt.weekday().max() <= 5  # business days (polars: Monday = 1)
    ok = realistic.select(
        (pl.col("low") <= pl.min_horizontal("open", "close")).all().alias("low_ok"),
        (pl.col("high") >= pl.max_horizontal("open", "close")).all().alias("high_ok"),
        (pl.col("low") > 0).all().alias("positive"), (pl.col("volume") > 0).all().alias("traded"),
    ).row(0)
    assert all(ok)
    typical = (realistic["open"] + realistic["high"] + realistic["low"] + realistic["close"]) / 4
    np.testing.assert_allclose(realistic["amount"], realistic["volume"] * typical, rtol=1e-12)
    _, report = validate_panel(realistic)
    assert report.ok and not report.issues
    assert synthetic_market(20, 500, mode="realistic", seed=0).equals(realistic)
    assert not synthetic_market(20, 500, mode="realistic", seed=1).equals(realistic)


def test_realistic_stylised_facts(realistic: pl.DataFrame) -> None:
    r = _returns(realistic)  # (T-1, N)
    sq = r**2
    acf_sq = np.mean([np.corrcoef(sq[1:, i], sq[:-1, i])[0, 1] for i in range(r.shape[1])])
    assert acf_sq > 0.05  # volatility clustering
    kurt = np.mean(((r - r.mean(0)) ** 4).mean(0) / r.var(0) ** 2)
    assert kurt > 3.5  # fat tails
    corr = np.corrcoef(r.T)
    assert corr[np.triu_indices_from(corr, 1)].mean() > 0.15  # a common market factor
    vol = realistic.pivot(on="instrument", index="timestamp", values="volume").sort("timestamp").drop("timestamp")
    log_vol = np.log(vol.to_numpy())[1:]
    vol_corr = np.mean([np.corrcoef(np.abs(r[:, i]), log_vol[:, i])[0, 1] for i in range(r.shape[1])])
    assert vol_corr > 0.2  # volume rises with |return|
    assert r.mean() > 0  # a positive drift


def test_martingale_has_no_predictable_mean() -> None:
    panel = synthetic_market(20, 500, mode="martingale", seed=3)
    sig = planted_signal(panel, strength=1.0).drop_nulls()
    X = np.c_[np.ones(sig.height), sig["ret_1"], sig["ret_5"], sig["range_change"]]
    y = sig["next_return"].to_numpy()
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    r2 = 1 - np.var(y - X @ beta) / np.var(y)
    assert r2 < 0.005 and abs(_ic(panel)) < 0.04
    r = _returns(panel)
    assert abs(r.mean()) < 4 * r.std() / np.sqrt(r.size)
    sq = r**2  # ... while volatility is still predictable
    assert np.mean([np.corrcoef(sq[1:, i], sq[:-1, i])[0, 1] for i in range(r.shape[1])]) > 0.05


def test_planted_signal_is_recovered_by_a_linear_model() -> None:
    strength = 0.2
    panel = synthetic_market(20, 1500, mode="planted", strength=strength, seed=0)
    sig = planted_signal(panel, strength=strength)
    assert sig.group_by("instrument").agg(pl.col("signal").head(5).is_null().all())["signal"].all()
    sig = sig.drop_nulls()
    ic = _ic(panel, strength)
    assert 0.12 < ic < 0.3  # strength ~ information coefficient
    X = np.c_[np.ones(sig.height), sig["ret_1"], sig["ret_5"], sig["range_change"]]
    beta, *_ = np.linalg.lstsq(X, sig["next_return"].to_numpy(), rcond=None)
    truth = [PLANTED_WEIGHTS[k] for k in ("ret_1", "ret_5", "range_change")]
    np.testing.assert_allclose(beta[1:] / strength, truth, atol=0.2)  # OLS recovers strength x weights
    assert abs(beta[0]) < 1e-3  # no planted drift
    weak = _ic(synthetic_market(20, 1500, mode="planted", strength=0.05, seed=0), 0.05)
    assert weak < ic


def test_intraday_calendar_and_argument_errors() -> None:
    from kronos_quant.data import BarCalendar

    cn = BarCalendar.intraday(bar="5min", sessions=[("09:35", "11:30"), ("13:05", "15:00")])
    panel = synthetic_market(2, 60, freq=cn, start="2024-06-18 09:35", seed=0)
    times = panel["timestamp"].dt.strftime("%H:%M").unique()
    assert not times.is_in(["11:35", "12:00", "13:00"]).any()
    daily_sd = np.std(_returns(synthetic_market(2, 200, seed=0)))
    assert np.std(_returns(panel)) < daily_sd / 3  # per-bar volatility is scaled to the bar size
    with pytest.raises(ValueError, match="mode must be one of"):
        synthetic_market(2, 10, mode="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strength applies to mode='planted'"):
        synthetic_market(2, 10, mode="martingale", strength=0.3)
    with pytest.raises(ValueError, match=r"strength must lie in \[0, 0.5\]"):
        synthetic_market(2, 10, mode="planted", strength=0.9)
