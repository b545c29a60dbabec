"""Workflows shared by the CLI, notebooks and the nightly job; each checks the device before any work.

- ``workflow.data``: a strategy's data, forecaster, rolling forecasts and provenance
  (``load_strategy_data``, ``make_forecaster``, ``rolling_spec``, ``forecast_table``, ``build_provenance``).
- ``workflow.backtest``: ``run_backtest`` (data -> rolling forecasts -> signals -> portfolio -> backtest ->
  metrics -> report), ``evaluate_forecasts`` / ``evaluate_run`` (everything after the forecasts, from a
  table or a report directory), ``baseline_forecasts``.
- ``workflow.data_check``: ``inspect_data`` / ``validate_data`` (``kronos-quant data inspect/validate``,
  optionally against a market's exchange calendar).
- ``workflow.nightly``: ``run_signals`` (the nightly job: forecasts for one as-of date, cached; scores and
  target weights for the next session, written atomically and idempotently) and ``run_forecast`` (the
  forecast table only).

This package wires the layers together; it computes nothing itself (scores: ``evaluation``; metrics:
``metrics``; files: ``report``). Every name is importable from ``kronos_quant.workflow``.
"""

from __future__ import annotations

from kronos_quant.run_checks import check_device
from kronos_quant.workflow.backtest import (
    BacktestRun,
    baseline_forecasts,
    evaluate_forecasts,
    evaluate_run,
    run_backtest,
)
from kronos_quant.workflow.data import (
    build_provenance,
    checked_forecaster,
    forecast_table,
    load_strategy_data,
    make_forecaster,
    rolling_spec,
)
from kronos_quant.workflow.data_check import inspect_data, validate_data
from kronos_quant.workflow.nightly import ForecastRun, SignalsRun, run_forecast, run_signals

__all__ = ["BacktestRun", "SignalsRun", "ForecastRun", "build_provenance", "check_device", "checked_forecaster",
           "load_strategy_data", "make_forecaster", "rolling_spec", "forecast_table", "baseline_forecasts",
           "evaluate_forecasts", "evaluate_run", "run_backtest", "run_signals", "run_forecast", "inspect_data",
           "validate_data"]
