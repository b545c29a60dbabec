"""Report figures (matplotlib, object-oriented API: no pyplot, no global backend change, never shown).

Every ``plot_*`` returns a ``matplotlib.figure.Figure``; notebooks display it as it is and
``report.writer`` renders it to PNG with the Agg canvas.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from matplotlib.figure import Figure

from kronos_quant.backtest import BacktestResult
from kronos_quant.metrics import (
    drawdown_series,
    information_coefficient,
    interval_coverage,
    pit_histogram,
    pit_values,
    quantile_returns,
)
from kronos_quant.schema import (
    central_intervals,
    join_realized,
    quantile_column,
    quantile_columns,
    sample_matrix,
)
from kronos_quant.signals import as_pandas

__all__ = ["FIGURES", "plot_equity", "plot_ic", "plot_quantile_returns", "plot_forecast_fan", "plot_calibration",
           "plot_reliability", "figure_makers"]

FIGURES: tuple[str, ...] = ("equity", "ic", "quantile_returns", "fan", "calibration")
_BANDS = ((0.05, 0.95, 0.2), (0.25, 0.75, 0.4))  # (low, high, alpha): 90% and 50% bands


def plot_equity(result: BacktestResult) -> Figure:
    """Equity (net, gross, benchmark; starting at 1) above the drawdown of net and benchmark."""
    fig = Figure(figsize=(10, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    init = result.init_cash
    top.plot(result.equity.index, result.equity / init, label="strategy (net)", color="C0")
    if result.gross_equity is not None:
        top.plot(result.gross_equity.index, result.gross_equity / init, label="strategy (gross)", color="C0", ls="--")
    top.plot(result.benchmark_equity.index, result.benchmark_equity / init, label="equal-weight benchmark", color="C7")
    top.set_ylabel("equity (start = 1)")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    for series, label, color in ((result.returns, "strategy", "C0"), (result.benchmark_returns, "benchmark", "C7")):
        dd = drawdown_series(series)
        bottom.fill_between(dd.index, dd.to_numpy(), 0.0, color=color, alpha=0.35, label=label)
    bottom.set_ylabel("drawdown")
    bottom.grid(alpha=0.3)
    bottom.tick_params(axis="x", labelrotation=30)
    fig.suptitle("Equity and drawdown")
    return fig


def plot_ic(ic: pd.Series, *, window: int = 20) -> Figure:
    """Per-date IC as bars with its rolling mean over ``window`` dates."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    ic = pd.Series(ic, dtype=np.float64)
    width: Any = 0.8
    if isinstance(ic.index, pd.DatetimeIndex) and len(ic) > 1:
        width = 0.8 * (pd.Series(ic.index).diff().median() / pd.Timedelta(days=1))  # date axis unit: days
    ax.bar(ic.index, ic.to_numpy(), width=width, color=np.where(ic.to_numpy() >= 0, "C2", "C3"), alpha=0.5,
           label="IC")
    rolling = ic.rolling(window, min_periods=1).mean()
    ax.plot(rolling.index, rolling.to_numpy(), color="k", label=f"rolling mean ({window})")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_title(f"{ic.name or 'IC'} over time (mean {np.nanmean(ic.to_numpy()) if len(ic) else np.nan:.4f})")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    ax.tick_params(axis="x", labelrotation=30)
    return fig


def plot_quantile_returns(bucket_returns: pd.DataFrame) -> Figure:
    """Mean forward return per score bucket (left) and cumulative bucket returns over time (right).

    bucket_returns: (T, Q) from ``metrics.quantile_returns`` (columns 1..Q, 1 = lowest scores).
    """
    fig = Figure(figsize=(11, 4), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1, 2))
    means = bucket_returns.mean()
    left.bar([str(c) for c in means.index], means.to_numpy() * 1e4, color="C0")
    left.set_xlabel("score bucket (1 = lowest)")
    left.set_ylabel("mean forward return (bp)")
    left.grid(alpha=0.3)
    growth = (1.0 + bucket_returns.fillna(0.0)).cumprod()
    for col in growth.columns:
        right.plot(growth.index, growth[col].to_numpy(), label=f"Q{col}")
    right.set_ylabel("cumulative (start = 1)")
    right.legend(loc="best", ncol=2)
    right.grid(alpha=0.3)
    right.tick_params(axis="x", labelrotation=30)
    fig.suptitle("Returns by score bucket")
    return fig


def _history(panel: pl.DataFrame, instrument: str, asof: pd.Timestamp, n_bars: int) -> pd.Series:
    """The last ``n_bars`` closes of ``instrument`` up to ``asof``, indexed by timestamp."""
    rows = panel.filter(pl.col("instrument") == instrument).sort("timestamp")
    series = pd.Series(rows["close"].to_numpy(), index=pd.DatetimeIndex(rows["timestamp"].to_pandas()))
    return series.loc[:asof].iloc[-n_bars:]


def plot_forecast_fan(
    forecasts: Any,
    panel: Any = None,
    *,
    instrument: str | None = None,
    asof: Any = None,
    history: int = 60,
) -> Figure:
    """Fan chart of one forecast: close history, median path, mean path, 50% and 90% bands.

    instrument: default the first in the table; asof: default that instrument's last as-of date.
    History (the last ``history`` closes up to asof) is drawn when ``panel`` is given.
    """
    fc = as_pandas(forecasts, name="forecasts")
    fc["asof"] = pd.to_datetime(fc["asof"])
    instrument = instrument if instrument is not None else str(sorted(fc["instrument"].unique())[0])
    rows = fc.loc[fc["instrument"] == instrument]
    if rows.empty:
        raise ValueError(f"instrument {instrument!r} is not in the forecast table")
    when = pd.Timestamp(asof) if asof is not None else rows["asof"].max()
    rows = rows.loc[rows["asof"] == when].sort_values("step")
    if rows.empty:
        raise ValueError(f"no forecast for {instrument!r} as of {when}")
    x = pd.to_datetime(rows["target_timestamp"]) if "target_timestamp" in rows else rows["step"]
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.subplots()
    if panel is not None:
        hist = _history(panel, instrument, when, history)
        ax.plot(hist.index, hist.to_numpy(), color="k", lw=1.2, label="history")
    for lo, hi, alpha in _BANDS:
        lo_col, hi_col = quantile_column("close", lo), quantile_column("close", hi)
        if lo_col in rows and hi_col in rows:
            ax.fill_between(x, rows[lo_col], rows[hi_col], color="C0", alpha=alpha, lw=0,
                            label=f"{round((hi - lo) * 100)}% band")
    if "close_median" in rows:
        ax.plot(x, rows["close_median"], color="C0", lw=1.8, label="median")
    if "close_mean" in rows:
        ax.plot(x, rows["close_mean"], color="C1", lw=1.0, ls="--", label="mean")
    ax.axvline(when, color="grey", lw=0.8)
    ax.set_title(f"{instrument}: forecast as of {when}")
    ax.set_ylabel("close")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    ax.tick_params(axis="x", labelrotation=30)
    return fig


def _coverage_by_level(fc: pl.DataFrame, realized: np.ndarray) -> list[tuple[float, float]]:
    """(nominal, observed) coverage of every central interval the close quantile columns allow."""
    columns = quantile_columns(fc.columns)
    return [(level, interval_coverage(fc[columns[lo]].to_numpy(), fc[columns[hi]].to_numpy(), realized)["coverage"])
            for level, (lo, hi) in central_intervals(columns).items()]


def plot_calibration(forecasts: Any, panel: pl.DataFrame, *, n_bins: int = 10) -> Figure:
    """PIT histogram of the realised close within the sample paths (left; needs close_samples) and
    observed vs nominal coverage of the central quantile intervals (right)."""
    fc = join_realized(forecasts, panel)
    realized = fc["actual_close"].to_numpy().astype(np.float64)  # (n,) NaN where unknown
    fig = Figure(figsize=(11, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    if "close_samples" in fc.columns:
        samples = sample_matrix(fc["close_samples"].to_list())  # (n, S)
        counts, edges = pit_histogram(pit_values(samples, realized, rng=0), n_bins=n_bins)
        left.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="C0", edgecolor="white")
        if counts.sum():
            left.axhline(counts.sum() / n_bins, color="k", ls="--", lw=0.8, label="uniform")
            left.legend(loc="upper right")
        left.set_xlabel("PIT")
        left.set_ylabel("count")
    else:
        left.text(0.5, 0.5, "no close_samples in the forecast table", ha="center", va="center")
    left.set_title("PIT histogram")
    pairs = _coverage_by_level(fc, realized)
    right.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8, label="ideal")
    if pairs:
        nominal, observed = zip(*pairs)
        right.plot(nominal, observed, marker="o", color="C1", label="observed")
    right.set_xlim(0, 1)
    right.set_ylim(0, 1)
    right.set_xlabel("nominal coverage")
    right.set_ylabel("observed coverage")
    right.set_title("Interval coverage")
    right.legend(loc="upper left")
    fig.suptitle("Calibration")
    return fig


def figure_makers(*, backtest: BacktestResult | None, signals: pd.DataFrame | None, forward_returns: pd.DataFrame | None,
                   forecasts: Any, panel: Any, fan_instrument: str | None, n_quantiles: int
                   ) -> dict[str, tuple[str | None, Callable[[], Figure]]]:
    """Figure name -> (the missing inputs, or None; a function that draws it)."""
    def need(**inputs: Any) -> str | None:
        missing = [k for k, v in inputs.items() if v is None]
        return ", ".join(missing) if missing else None

    return {
        "equity": (need(backtest=backtest), lambda: plot_equity(backtest)),
        "ic": (need(signals=signals, forward_returns=forward_returns),
               lambda: plot_ic(information_coefficient(signals, forward_returns, method="spearman").rename("rank IC"))),
        "quantile_returns": (need(signals=signals, forward_returns=forward_returns),
                             lambda: plot_quantile_returns(quantile_returns(signals, forward_returns,
                                                                            n_quantiles=n_quantiles))),
        "fan": (need(forecasts=forecasts), lambda: plot_forecast_fan(forecasts, panel, instrument=fan_instrument)),
        "calibration": (need(forecasts=forecasts, panel=panel), lambda: plot_calibration(forecasts, panel)),
    }


def plot_reliability(curves: dict[str, dict[str, list[float]]], *, title: str = "prob_up reliability") -> Figure:
    """Reliability diagram: observed up-frequency against the mean forecast per bin, one line per curve.

    curves: label -> ``metrics.reliability_curve`` data (e.g. a leaderboard row's
    ``prob_up["reliability_curve"]``, ``["reliability_curve_recalibrated"]`` and
    ``["reliability_curve_climatology"]``). Empty bins are left out; marker area follows the bin count.
    A calibrated forecast lies on the diagonal.
    """
    fig = Figure(figsize=(6, 6), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="C7", ls="--", lw=1, label="calibrated")
    for i, (label, curve) in enumerate(curves.items()):
        x, y, n = (np.asarray(curve[k], dtype=np.float64) for k in ("mean_forecast", "observed_frequency", "count"))
        ok = np.isfinite(x) & np.isfinite(y) & (n > 0)
        if not ok.any():
            continue
        ax.plot(x[ok], y[ok], marker="o", color=f"C{i}", label=label)
        ax.scatter(x[ok], y[ok], s=20 + 200 * n[ok] / n[ok].max(), color=f"C{i}", alpha=0.4)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="forecast probability of an up move", ylabel="observed up frequency",
           title=title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig
