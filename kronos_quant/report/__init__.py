"""Reports: the tear sheet, the terminal summary, figures (matplotlib) and a run's files.

- ``report.leaderboard``: reads the comparison keys of metrics.json (leaderboard, comparisons);
- ``report.headline`` / ``report.facts``: the headline table, verdict lines and run facts that the
  tear sheet and the terminal share; ``report.fmt``: units (%, bp, ratios, t, p);
- ``report.summary``: ``summarize_backtest``/``summarize_signal`` (results -> metric dicts) and
  ``render_summary`` (the terminal summary);
- ``report.figures``: every figure by name and section (``plot_*`` from ``plots_forecast``,
  ``plots_signal``, ``plots_portfolio``; ``matplotlib.figure.Figure`` objects, no pyplot);
- ``report.tearsheet``: the self-contained HTML page (or notebook fragment); ``report.notebook``:
  a run's tear sheet and figures for Jupyter;
- ``report.writer``: ``write_report``, every file of a run, each written atomically.
Knows nothing about models, forecasting, signal construction or how the backtest simulates.
"""

from __future__ import annotations

from kronos_quant.report.figures import (
    FIGURES,
    SECTIONS,
    make_figures,
    plot_calibration,
    plot_drawdown,
    plot_equity,
    plot_errors_by_step,
    plot_exposure_turnover,
    plot_forecast_fan,
    plot_ic,
    plot_monthly_returns,
    plot_quantile_returns,
    plot_rank_autocorrelation,
    plot_rolling_sharpe,
)
from kronos_quant.report.headline import headline, verdicts
from kronos_quant.report.inputs import ReportInputs
from kronos_quant.report.leaderboard import leaderboard
from kronos_quant.report.notebook import inputs_from_run, run_figures, run_tearsheet
from kronos_quant.report.summary import render_summary, summarize_backtest, summarize_signal
from kronos_quant.report.tearsheet import render_tearsheet
from kronos_quant.report.writer import figure_png, write_report

__all__ = [
    "FIGURES",
    "SECTIONS",
    "ReportInputs",
    "inputs_from_run",
    "run_figures",
    "run_tearsheet",
    "make_figures",
    "render_tearsheet",
    "figure_png",
    "leaderboard",
    "headline",
    "verdicts",
    "summarize_backtest",
    "summarize_signal",
    "render_summary",
    "plot_equity",
    "plot_drawdown",
    "plot_monthly_returns",
    "plot_rolling_sharpe",
    "plot_exposure_turnover",
    "plot_ic",
    "plot_quantile_returns",
    "plot_rank_autocorrelation",
    "plot_forecast_fan",
    "plot_errors_by_step",
    "plot_calibration",
    "write_report",
]
