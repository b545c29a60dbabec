"""Portfolio statistics on tiny hand series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos_quant.metrics import (
    annual_return,
    annual_volatility,
    calmar_ratio,
    drawdown_series,
    excess_returns,
    information_ratio,
    max_drawdown,
    performance_summary,
    sharpe_ratio,
    signal_turnover,
    sortino_ratio,
    total_return,
    tracking_error,
    win_rate,
)

IDX = pd.date_range("2022-01-03", periods=4, freq="B")
R = pd.Series([0.1, -0.2, 0.05], index=IDX[:3])


def test_total_and_annual_return() -> None:
    assert total_return(R) == pytest.approx(1.1 * 0.8 * 1.05 - 1)
    assert annual_return(R, periods_per_year=3) == pytest.approx(-0.076)
    assert annual_return(R) == pytest.approx(0.924 ** (252 / 3) - 1)
    assert annual_return(pd.Series([0.5, -1.0])) == -1.0
    assert np.isnan(total_return(pd.Series([], dtype=float)))


def test_drawdown() -> None:
    # wealth 1.1, 0.88, 0.924: trough 0.88 after the 1.1 peak
    assert max_drawdown(R) == pytest.approx(0.88 / 1.1 - 1)
    assert max_drawdown([-0.1, 0.05]) == pytest.approx(-0.1)  # starting capital is a peak
    assert max_drawdown([0.01, 0.02]) == 0.0
    np.testing.assert_allclose(drawdown_series(R).to_numpy(), [0.0, -0.2, 0.924 / 1.1 - 1])
    assert calmar_ratio(R, periods_per_year=3) == pytest.approx(-0.076 / 0.2)
    assert np.isnan(calmar_ratio([0.01, 0.02]))


def test_volatility_sharpe_sortino() -> None:
    r = pd.Series([0.01, 0.02, 0.03])
    assert annual_volatility(r) == pytest.approx(0.01 * np.sqrt(252))
    assert sharpe_ratio(r) == pytest.approx(2 * np.sqrt(252))
    rf_annual = 1.01**252 - 1  # exactly 1% per period
    assert sharpe_ratio(r, risk_free=rf_annual) == pytest.approx(np.sqrt(252))
    assert sharpe_ratio(r, periods_per_year=12) == pytest.approx(2 * np.sqrt(12))
    s = pd.Series([0.02, -0.01, 0.03, -0.02])
    assert sortino_ratio(s) == pytest.approx(0.005 / np.sqrt(0.0005 / 4) * np.sqrt(252))
    assert np.isnan(sortino_ratio(r))  # no downside
    flat = pd.Series([0.001] * 5)
    assert annual_volatility(flat) == 0.0 and np.isnan(sharpe_ratio(flat))
    assert np.isnan(sharpe_ratio([0.01]))
    with pytest.raises(ValueError, match="periods_per_year"):
        sharpe_ratio(r, periods_per_year=0)


def test_win_rate_and_nan_handling() -> None:
    assert win_rate([0.1, 0.0, -0.1, 0.2]) == pytest.approx(2 / 3)
    assert np.isnan(win_rate([0.0, 0.0]))
    assert total_return(pd.Series([0.1, np.nan, 0.1])) == pytest.approx(0.21)


def test_excess_and_information_ratio() -> None:
    r = pd.Series([0.01, 0.02, 0.03, 0.5], index=IDX)
    b = pd.Series([0.0, 0.01, 0.0], index=IDX[:3])  # the last strategy period has no benchmark
    active = excess_returns(r, b)
    np.testing.assert_allclose(active.to_numpy(), [0.01, 0.01, 0.03])
    std = np.std([0.01, 0.01, 0.03], ddof=1)
    assert information_ratio(r, b) == pytest.approx(0.05 / 3 / std * np.sqrt(252))
    assert tracking_error(r, b) == pytest.approx(std * np.sqrt(252))
    with pytest.raises(ValueError, match="share no"):
        excess_returns(r, pd.Series([0.0], index=[pd.Timestamp("1999-01-01")]))


def test_performance_summary() -> None:
    rng = np.random.default_rng(0)
    idx = pd.date_range("2020-01-01", periods=504, freq="B")
    strat = pd.Series(rng.normal(0.0008, 0.01, 504), index=idx)
    bench = pd.Series(rng.normal(0.0003, 0.01, 504), index=idx)
    weights = pd.DataFrame(rng.dirichlet(np.ones(4), size=24), index=idx[::21][:24])
    turnover = signal_turnover(weights)
    out = performance_summary(strat, benchmark=bench, turnover=turnover)
    assert out["sharpe_ratio"] == pytest.approx(sharpe_ratio(strat))
    assert out["max_drawdown"] == pytest.approx(max_drawdown(strat))
    assert out["information_ratio"] == pytest.approx(information_ratio(strat, bench))
    assert out["excess_annual_return"] == pytest.approx(annual_return(strat) - annual_return(bench))
    assert out["annual_turnover"] == pytest.approx(turnover.sum() / 2.0)  # 504 daily periods = 2 years
    assert out["beta"] == pytest.approx(np.cov(strat, bench)[0, 1] / np.var(bench, ddof=1))
    assert out["n_periods"] == 504
    empty = performance_summary(pd.Series([], dtype=float))
    assert (
        np.isnan(empty["sharpe_ratio"])
        and np.isnan(empty["max_drawdown"])
        and "information_ratio" not in empty
    )
    with pytest.raises(ValueError, match="Series"):
        performance_summary(pd.DataFrame({"a": [0.1], "b": [0.2]}))
