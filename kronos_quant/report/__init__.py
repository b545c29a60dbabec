"""Reports: run summaries, figures (matplotlib) and files (JSON, Parquet, PNG, one self-contained HTML).

- ``report.summary``: ``summarize_backtest``/``summarize_signal`` (results -> metric dicts) and the
  model-vs-baseline summary table (``summary_rows``, ``render_summary``);
- ``report.figures``: ``plot_*`` functions returning ``matplotlib.figure.Figure`` objects (no
  pyplot, never shown);
- ``report.writer``: ``write_report``, every file of a run, each written atomically.
Knows nothing about models, forecasting, signal construction or how the backtest simulates.
"""

from __future__ import annotations

from kronos_quant.report.figures import (
    FIGURES,
    plot_calibration,
    plot_equity,
    plot_forecast_fan,
    plot_ic,
    plot_quantile_returns,
)
from kronos_quant.report.summary import (
    format_value,
    render_summary,
    summarize_backtest,
    summarize_signal,
    summary_rows,
)
from kronos_quant.report.writer import write_report

__all__ = [
    "FIGURES",
    "summarize_backtest",
    "summarize_signal",
    "summary_rows",
    "format_value",
    "render_summary",
    "plot_equity",
    "plot_ic",
    "plot_quantile_returns",
    "plot_forecast_fan",
    "plot_calibration",
    "write_report",
]
