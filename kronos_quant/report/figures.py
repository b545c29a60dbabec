"""The report's figures by name and section, and what each needs.

``FIGURES`` names every figure in page order, ``SECTIONS`` groups them under the tear sheet's
headings; ``figure_makers(inputs)`` says, per figure, which inputs are missing (or None) and how to
draw it from a ``ReportInputs``; ``make_figures(inputs)`` draws the ones it can. The drawing
functions (``plot_*``, matplotlib ``Figure`` objects, no pyplot, never shown) live in
``plots_forecast``, ``plots_signal`` and ``plots_portfolio`` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from kronos_quant.metrics import information_coefficient, quantile_returns
from kronos_quant.report.inputs import ReportInputs
from kronos_quant.report.leaderboard import dig
from kronos_quant.report.plots_forecast import (
    plot_calibration,
    plot_errors_by_step,
    plot_forecast_fan,
    plot_reliability,
    reliability_curves,
)
from kronos_quant.report.plots_portfolio import (
    plot_drawdown,
    plot_equity,
    plot_exposure_turnover,
    plot_monthly_returns,
    plot_rolling_sharpe,
)
from kronos_quant.report.plots_signal import (
    ic_frame,
    plot_ic,
    plot_quantile_returns,
    plot_rank_autocorrelation,
)

__all__ = ["FIGURES", "SECTIONS", "CAPTIONS", "figure_makers", "make_figures", "plot_equity", "plot_drawdown",
           "plot_monthly_returns", "plot_rolling_sharpe", "plot_exposure_turnover", "plot_ic", "plot_quantile_returns",
           "plot_rank_autocorrelation", "plot_forecast_fan", "plot_errors_by_step", "plot_calibration",
           "plot_reliability"]

SECTIONS: dict[str, tuple[str, ...]] = {
    "Forecast quality": ("errors_by_step", "fan"),
    "Signal": ("ic", "quantile_returns", "rank_autocorrelation"),
    "Portfolio": ("equity", "drawdown", "monthly_returns", "rolling_sharpe", "exposure_turnover"),
    "Calibration": ("calibration", "reliability"),
}
FIGURES: tuple[str, ...] = tuple(name for names in SECTIONS.values() for name in names)
CAPTIONS = {
    "errors_by_step": "Error of the h-step forecasts at each step, beside the no-change forecast.",
    "fan": "One forecast: 50% and 90% bands of the sample paths, with the closes that followed.",
    "ic": "Per-date rank IC of the strategy's score, and rolling means of the strategy and each baseline.",
    "quantile_returns": "Forward returns of the instruments in each score bucket (equal weight, no costs).",
    "rank_autocorrelation": "How much each ranking changes from one rebalance to the next.",
    "equity": "Net of costs; the strategy's gross run dotted.",
    "drawdown": "Loss from the running peak, net of costs.",
    "monthly_returns": "Net monthly returns of the strategy.",
    "rolling_sharpe": "Annualised Sharpe ratio over a rolling window, net of costs.",
    "exposure_turnover": "Share of capital invested, number of holdings, and one-way turnover per bar.",
    "calibration": "Rank histogram (flat when calibrated) and interval coverage before and after walk-forward "
                   "recalibration (on the forecasts that could be recalibrated).",
    "reliability": "prob_up at the last step: observed up-frequency against the forecast probability, before and "
                   "after walk-forward recalibration, beside the climatology baseline (calibrated = on the diagonal).",
}


def _ic_table(inputs: ReportInputs) -> pd.DataFrame:
    """Dates x forecasters of the per-date rank IC: from the evaluation's IC table when given, else
    computed from the scores and the label."""
    if inputs.ic is not None and len(inputs.ic):
        names = {str(e.get("name")): e["label"] for e in inputs.entries}
        wide = ic_frame(inputs.ic, names)
        order = [label for label in inputs.kinds if label in wide.columns]
        return wide[order + [c for c in wide.columns if c not in order]]
    fwd = inputs.forward_returns
    return pd.DataFrame({label: information_coefficient(scores, fwd.reindex(index=scores.index, columns=scores.columns),
                                                        method="spearman")
                         for label, scores in inputs.scores.items()})


def _need(**values: Any) -> str | None:
    missing = [k for k, v in values.items() if v is None]
    return ", ".join(missing) if missing else None


def figure_makers(inputs: ReportInputs) -> dict[str, tuple[str | None, Callable[[], Figure]]]:
    """Figure name -> (the missing inputs, or None; a function that draws it)."""
    i = inputs
    bt, label, bases, bench = i.backtest, i.model_label, i.baseline_results, i.benchmark_label
    model = next((e for e in i.entries if e.get("kind") == "model"), {})
    # the DM tests per step against the random walk, the reference drawn beside the model's errors
    comparison = next((c for c in i.metrics.get("comparisons") or []
                       if c.get("dm_mse_per_step") and "random" in str(c.get("against", ""))), {})
    ic_inputs = None if i.ic is not None and len(i.ic) else _need(signals=i.signals, forward_returns=i.forward_returns)
    return {
        "errors_by_step": (_need(forecasts=i.forecasts, panel=i.panel),
                           lambda: plot_errors_by_step(i.forecasts, i.panel,
                                                       dm_per_step=comparison.get("dm_mse_per_step"), label=label)),
        "fan": (_need(forecasts=i.forecasts), lambda: plot_forecast_fan(i.forecasts, i.panel, instrument=i.fan_instrument)),
        "ic": (ic_inputs, lambda: plot_ic(_ic_table(i), kinds=i.kinds)),
        "quantile_returns": (_need(signals=i.signals, forward_returns=i.forward_returns),
                             lambda: plot_quantile_returns(quantile_returns(
                                 i.signals, i.forward_returns.reindex(index=i.signals.index, columns=i.signals.columns),
                                 n_quantiles=i.n_quantiles))),
        "rank_autocorrelation": (_need(signals=i.signals), lambda: plot_rank_autocorrelation(i.scores, kinds=i.kinds)),
        "equity": (_need(backtest=bt), lambda: plot_equity(bt, bases, label=label, benchmark_label=bench)),
        "drawdown": (_need(backtest=bt), lambda: plot_drawdown(bt, bases, label=label, benchmark_label=bench)),
        "monthly_returns": (_need(backtest=bt), lambda: plot_monthly_returns(bt, label=label)),
        "rolling_sharpe": (_need(backtest=bt), lambda: plot_rolling_sharpe(bt, bases, label=label,
                                                                                       benchmark_label=bench)),
        "exposure_turnover": (_need(backtest=bt), lambda: plot_exposure_turnover(bt, label=label)),
        "calibration": (_need(forecasts=i.forecasts, panel=i.panel),
                        lambda: plot_calibration(i.forecasts, i.panel,
                                                 attainable_90=dig(model, "coverage_90_all_steps", "attainable"))),
        "reliability": (None if reliability_curves(model) else "prob_up reliability data (metrics leaderboard)",
                        lambda: plot_reliability(reliability_curves(model))),
    }


def make_figures(inputs: ReportInputs, names: Sequence[str] | None = None) -> dict[str, Figure]:
    """Draw the named figures (default: every figure whose inputs are present), in page order.

    Naming an unknown figure, or one whose inputs are missing, raises ValueError.
    """
    if names is not None:
        unknown = [n for n in names if n not in FIGURES]
        if unknown:
            raise ValueError(f"unknown figure(s) {unknown}; choose from {list(FIGURES)}")
    makers = figure_makers(inputs)
    out: dict[str, Figure] = {}
    for name in names if names is not None else FIGURES:
        missing, make = makers[name]
        if missing is not None:
            if names is not None:
                raise ValueError(f"figure {name!r} needs {missing}; pass it to write_report or leave the figure out")
            continue
        out[name] = make()
    return out
