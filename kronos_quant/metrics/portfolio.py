"""Portfolio performance statistics from a series of per-period simple returns.

Owns return, risk and risk-adjusted ratios (Sharpe, Sortino, Calmar, information ratio) and
drawdowns. Inputs are a pandas Series (or 1-D array) of simple returns, one per period, e.g.
0.01 for +1%; NaNs are dropped. ``periods_per_year`` is always explicit: 252 for daily trading
bars (the default, never 365), 52 weekly, 12 monthly, 252 * 48 for 5-minute bars of a 4-hour
session. ``risk_free`` is an *annual* rate, turned into a per-period rate geometrically.

Edge cases, shared by all functions: an empty series gives NaN; a ratio whose denominator
(volatility, downside deviation, drawdown) is zero gives NaN rather than +-inf; statistics
needing a sample standard deviation need at least two periods. Knows nothing about how the
returns were produced (backtest engine, costs), files or plots.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from kronos_quant.metrics._validation import as_return_series, check_periods_per_year

logger = logging.getLogger(__name__)

__all__ = [
    "total_return",
    "annual_return",
    "annual_volatility",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "drawdown_series",
    "calmar_ratio",
    "win_rate",
    "excess_returns",
    "tracking_error",
    "information_ratio",
    "performance_summary",
]


def _per_period_rate(risk_free: float, periods_per_year: float) -> float:
    if risk_free <= -1:
        raise ValueError(f"risk_free is an annual rate and must be > -1, got {risk_free}")
    return (1.0 + risk_free) ** (1.0 / periods_per_year) - 1.0


def _mean_over_std(values: np.ndarray, periods_per_year: float) -> float:
    """Annualised mean / sample std; NaN with < 2 values or constant values."""
    if values.size < 2 or np.ptp(values) == 0:
        return np.nan
    return float(values.mean() / values.std(ddof=1) * np.sqrt(periods_per_year))


def total_return(returns: Any) -> float:
    """Compounded return over the whole series: prod(1 + r) - 1. NaN when empty."""
    r = as_return_series(returns).to_numpy()
    return float(np.prod(1.0 + r) - 1.0) if r.size else np.nan


def annual_return(returns: Any, *, periods_per_year: float = 252) -> float:
    """Geometric annual return (CAGR): prod(1 + r) ** (periods_per_year / n) - 1.

    -1.0 when the compounded wealth reached zero or below; NaN when empty.
    """
    ppy = check_periods_per_year(periods_per_year)
    r = as_return_series(returns).to_numpy()
    if r.size == 0:
        return np.nan
    growth = float(np.prod(1.0 + r))
    if growth <= 0:
        return -1.0
    return growth ** (ppy / r.size) - 1.0


def annual_volatility(returns: Any, *, periods_per_year: float = 252) -> float:
    """Sample standard deviation (ddof=1) times sqrt(periods_per_year). NaN with < 2 periods."""
    ppy = check_periods_per_year(periods_per_year)
    r = as_return_series(returns).to_numpy()
    if r.size < 2:
        return np.nan
    if np.ptp(r) == 0:
        return 0.0
    return float(r.std(ddof=1) * np.sqrt(ppy))


def sharpe_ratio(returns: Any, *, periods_per_year: float = 252, risk_free: float = 0.0) -> float:
    """Annualised Sharpe ratio: mean(r - rf_p) / std(r - rf_p) * sqrt(periods_per_year).

    rf_p = (1 + risk_free) ** (1 / periods_per_year) - 1. NaN with < 2 periods or zero volatility.
    """
    ppy = check_periods_per_year(periods_per_year)
    r = as_return_series(returns).to_numpy()
    return _mean_over_std(r - _per_period_rate(risk_free, ppy), ppy)


def sortino_ratio(returns: Any, *, periods_per_year: float = 252, risk_free: float = 0.0) -> float:
    """Annualised Sortino ratio: mean(x) / sqrt(mean(min(x, 0)^2)) * sqrt(periods_per_year), x = r - rf_p.

    The downside deviation averages over *all* periods (target semideviation, target = rf).
    NaN when empty or when no period is below the target (no downside).
    """
    ppy = check_periods_per_year(periods_per_year)
    x = as_return_series(returns).to_numpy() - _per_period_rate(risk_free, ppy)
    if x.size == 0:
        return np.nan
    downside = float(np.sqrt(np.mean(np.minimum(x, 0.0) ** 2)))
    if downside == 0:
        return np.nan
    return float(x.mean() / downside * np.sqrt(ppy))


def drawdown_series(returns: Any) -> pd.Series:
    """Drawdown after each period: wealth / running peak - 1 (<= 0), starting from wealth 1."""
    r = as_return_series(returns)
    wealth = np.cumprod(1.0 + r.to_numpy())
    peak = np.maximum.accumulate(np.maximum(wealth, 1.0))  # the initial capital 1 is a peak too
    return pd.Series(wealth / peak - 1.0, index=r.index, name="drawdown")


def max_drawdown(returns: Any) -> float:
    """Largest peak-to-trough loss of compounded wealth, as a negative number (e.g. -0.23).

    The starting capital counts as a peak, so a first-period loss of 10% is a -0.10 drawdown.
    0.0 for a series that never falls below its running peak; NaN when empty.
    """
    dd = drawdown_series(returns)
    return float(min(dd.min(), 0.0)) if len(dd) else np.nan


def calmar_ratio(returns: Any, *, periods_per_year: float = 252) -> float:
    """Annual (geometric) return divided by |max drawdown|; NaN when empty or without drawdown."""
    mdd = max_drawdown(returns)
    if not np.isfinite(mdd) or mdd == 0:
        return np.nan
    return annual_return(returns, periods_per_year=periods_per_year) / abs(mdd)


def win_rate(returns: Any) -> float:
    """Share of periods with a positive return among periods with a non-zero return.

    Flat periods (return exactly 0, e.g. out of the market) are excluded. NaN when none is left.
    """
    r = as_return_series(returns).to_numpy()
    moved = r[r != 0]
    return float(np.mean(moved > 0)) if moved.size else np.nan


def excess_returns(returns: Any, benchmark: Any) -> pd.Series:
    """Per-period active return r - b on the periods both series share (inner join on the index).

    Arrays without an index are matched by position. Raises ValueError when nothing overlaps.
    """
    r = as_return_series(returns, "returns")
    b = as_return_series(benchmark, "benchmark")
    r_aligned, b_aligned = r.align(b, join="inner")
    if len(r_aligned) == 0:
        raise ValueError(
            f"`returns` ({len(r)} periods) and `benchmark` ({len(b)} periods) share no index values; "
            "index both by the same dates"
        )
    dropped = len(r) + len(b) - 2 * len(r_aligned)
    if dropped:
        logger.debug("excess_returns: %d periods not present in both series were dropped", dropped)
    return (r_aligned - b_aligned).rename("excess_return")


def tracking_error(returns: Any, benchmark: Any, *, periods_per_year: float = 252) -> float:
    """Annualised standard deviation of the active return; NaN with < 2 shared periods."""
    return annual_volatility(excess_returns(returns, benchmark), periods_per_year=periods_per_year)


def information_ratio(returns: Any, benchmark: Any, *, periods_per_year: float = 252) -> float:
    """Annualised mean active return / its standard deviation; NaN with < 2 periods or zero tracking error."""
    ppy = check_periods_per_year(periods_per_year)
    return _mean_over_std(excess_returns(returns, benchmark).to_numpy(), ppy)


def _beta(returns: pd.Series, benchmark: pd.Series) -> float:
    r, b = returns.align(benchmark, join="inner")
    if len(r) < 2 or np.ptp(b.to_numpy()) == 0:
        return np.nan
    cov = np.cov(r.to_numpy(), b.to_numpy(), ddof=1)
    return float(cov[0, 1] / cov[1, 1])


def performance_summary(
    returns: Any,
    *,
    benchmark: Any | None = None,
    periods_per_year: float = 252,
    turnover: Any | None = None,
    risk_free: float = 0.0,
) -> dict[str, float]:
    """Every statistic of this module for one return series, as a flat dict of floats.

    Keys: n_periods, total_return, annual_return, annual_volatility, sharpe_ratio,
    sortino_ratio, max_drawdown, calmar_ratio, win_rate. With ``benchmark`` (per-period simple
    returns on the same index) also benchmark_total_return, benchmark_annual_return,
    benchmark_sharpe_ratio, benchmark_max_drawdown, excess_annual_return (strategy minus
    benchmark geometric annual return, both over the shared periods), tracking_error,
    information_ratio and beta. With ``turnover`` (per-rebalance one-way turnover, e.g. from
    ``signal_turnover``) also mean_turnover (per rebalance) and annual_turnover (total turnover
    divided by the number of years the returns span, n_periods / periods_per_year).
    """
    ppy = check_periods_per_year(periods_per_year)
    r = as_return_series(returns)
    out: dict[str, float] = {
        "n_periods": len(r),
        "total_return": total_return(r),
        "annual_return": annual_return(r, periods_per_year=ppy),
        "annual_volatility": annual_volatility(r, periods_per_year=ppy),
        "sharpe_ratio": sharpe_ratio(r, periods_per_year=ppy, risk_free=risk_free),
        "sortino_ratio": sortino_ratio(r, periods_per_year=ppy, risk_free=risk_free),
        "max_drawdown": max_drawdown(r),
        "calmar_ratio": calmar_ratio(r, periods_per_year=ppy),
        "win_rate": win_rate(r),
    }
    if benchmark is not None:
        b = as_return_series(benchmark, "benchmark")
        r_shared, b_shared = r.align(b, join="inner")
        out.update(
            {
                "benchmark_total_return": total_return(b),
                "benchmark_annual_return": annual_return(b, periods_per_year=ppy),
                "benchmark_sharpe_ratio": sharpe_ratio(b, periods_per_year=ppy, risk_free=risk_free),
                "benchmark_max_drawdown": max_drawdown(b),
                "excess_annual_return": annual_return(r_shared, periods_per_year=ppy)
                - annual_return(b_shared, periods_per_year=ppy),
                "tracking_error": tracking_error(r, b, periods_per_year=ppy),
                "information_ratio": information_ratio(r, b, periods_per_year=ppy),
                "beta": _beta(r, b),
            }
        )
    if turnover is not None:
        t = as_return_series(turnover, "turnover").to_numpy()
        years = len(r) / ppy
        out["mean_turnover"] = float(t.mean()) if t.size else np.nan
        out["annual_turnover"] = float(t.sum() / years) if years > 0 else np.nan
    return out
