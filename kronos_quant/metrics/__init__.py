"""Evaluation metrics: pure functions from arrays / frames to numbers / frames.

Owns signal quality (IC, quantile returns, turnover), point-forecast accuracy, probabilistic
scores (CRPS, pinball loss, interval coverage, PIT) and portfolio statistics (Sharpe,
drawdown, ...). No I/O, no plotting, no backtest engine: ``backtest`` produces the returns and
``report`` draws and writes what these functions compute.
"""

from __future__ import annotations

from kronos_quant.metrics.accuracy import (
    directional_accuracy,
    forecast_accuracy,
    mean_absolute_error,
    mean_squared_error,
)
from kronos_quant.metrics.portfolio import (
    annual_return,
    annual_volatility,
    calmar_ratio,
    drawdown_series,
    excess_returns,
    information_ratio,
    max_drawdown,
    performance_summary,
    sharpe_ratio,
    sortino_ratio,
    total_return,
    tracking_error,
    win_rate,
)
from kronos_quant.metrics.probabilistic import (
    crps_ensemble,
    interval_coverage,
    interval_metrics_from_samples,
    interval_score,
    pinball_loss,
    pit_histogram,
    pit_values,
)
from kronos_quant.metrics.signal import (
    ic_summary,
    information_coefficient,
    quantile_returns,
    quantile_spread,
    rank_autocorrelation,
    rank_information_coefficient,
    signal_turnover,
)

__all__ = [
    # signal quality
    "information_coefficient",
    "rank_information_coefficient",
    "ic_summary",
    "quantile_returns",
    "quantile_spread",
    "signal_turnover",
    "rank_autocorrelation",
    # point-forecast accuracy
    "mean_squared_error",
    "mean_absolute_error",
    "directional_accuracy",
    "forecast_accuracy",
    # probabilistic
    "crps_ensemble",
    "pinball_loss",
    "interval_coverage",
    "interval_score",
    "interval_metrics_from_samples",
    "pit_values",
    "pit_histogram",
    # portfolio
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
