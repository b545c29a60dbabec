"""Portfolio figures: equity, drawdown, monthly returns, rolling Sharpe, exposure and turnover.

Each ``plot_*`` takes the strategy's ``BacktestResult`` (and, where it compares, the baselines'
results by label) and returns a ``matplotlib.figure.Figure`` (object-oriented API: no pyplot, never
shown). Returns are counted from the first execution bar, as in ``report.summarize_backtest``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from kronos_quant.backtest import BENCHMARK_NAME, BacktestResult
from kronos_quant.metrics import drawdown_series

__all__ = ["COLORS", "series_color", "traded_returns", "plot_equity", "plot_drawdown", "plot_monthly_returns",
           "plot_rolling_sharpe", "plot_exposure_turnover"]

COLORS = {"model": "#1f5fa8", "benchmark": "#7f7f7f",
          "baselines": ("#e07b00", "#2a9d5c", "#8e44ad", "#c0392b", "#17becf", "#bcbd22")}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def series_color(kind: str, index: int = 0) -> str:
    """The colour of a line: the model blue, the benchmark grey, baselines from a fixed cycle."""
    if kind in ("model", "benchmark"):
        return COLORS[kind]
    return COLORS["baselines"][index % len(COLORS["baselines"])]


def _start(result: BacktestResult) -> int:
    executed = np.flatnonzero(result.targets.notna().any(axis=1).to_numpy())
    return int(executed[0]) if executed.size else 0


def traded_returns(result: BacktestResult, *, which: str = "net") -> pd.Series:
    """Per-bar returns from the first execution bar on; which: net | gross | benchmark."""
    series = {"net": result.returns, "gross": result.gross_returns, "benchmark": result.benchmark_returns}[which]
    if series is None:
        raise ValueError(f"the backtest has no {which} returns (run it with costs to get gross returns)")
    return series.iloc[_start(result):]


def _lines(result: BacktestResult, baselines: Mapping[str, BacktestResult] | None, label: str,
           benchmark: str, gross: bool = False) -> list[tuple[str, pd.Series, str, str]]:
    """(label, returns, colour, line style) of the strategy, its gross run, the baselines and the benchmark."""
    out = [(label, traded_returns(result), COLORS["model"], "-")]
    if gross and result.gross_returns is not None:
        out.append((f"{label} (gross)", traded_returns(result, which="gross"), COLORS["model"], ":"))
    for i, (name, base) in enumerate((baselines or {}).items()):
        out.append((name, traded_returns(base), series_color("baseline", i), "-"))
    out.append((benchmark, traded_returns(result, which="benchmark"), COLORS["benchmark"], "-"))
    return out


def _finish(ax, *, ylabel: str, legend: bool = True) -> None:
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    if legend:
        ax.legend(loc="best", fontsize=8, framealpha=0.8)


def plot_equity(result: BacktestResult, baselines: Mapping[str, BacktestResult] | None = None, *,
                label: str = "strategy", benchmark_label: str = BENCHMARK_NAME,
                figsize: tuple[float, float] = (6.4, 4.3)) -> Figure:
    """Growth of 1 (net of costs) of the strategy, its gross run, each baseline and the equal-weight benchmark."""
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    for name, returns, color, style in _lines(result, baselines, label, benchmark_label, gross=True):
        growth = (1.0 + returns).cumprod()
        ax.plot(growth.index, growth.to_numpy(), color=color, ls=style, lw=1.8 if style == "-" else 1.2, label=name)
    ax.axhline(1.0, color="black", lw=0.6)
    ax.set_title("Equity, net of costs (growth of 1)", fontsize=11)
    _finish(ax, ylabel="growth of 1")
    return fig


def plot_drawdown(result: BacktestResult, baselines: Mapping[str, BacktestResult] | None = None, *,
                  label: str = "strategy", benchmark_label: str = BENCHMARK_NAME) -> Figure:
    """Drawdown from the running peak (net) of the strategy, the baselines and the benchmark, with a legend."""
    fig = Figure(figsize=(7.0, 3.4), layout="constrained")
    ax = fig.subplots()
    for name, returns, color, _ in _lines(result, baselines, label, benchmark_label):
        dd = drawdown_series(returns) * 100.0
        ax.plot(dd.index, dd.to_numpy(), color=color, lw=1.2, label=f"{name} (max {dd.min():.1f}%)")
        if name == label:
            ax.fill_between(dd.index, dd.to_numpy(), 0.0, color=color, alpha=0.15)
    ax.set_title("Drawdown (net)", fontsize=11)
    _finish(ax, ylabel="drawdown (%)")
    return fig


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded returns per calendar month: (years, 12 months) with NaN where the month has no bar."""
    r = pd.Series(returns, dtype=np.float64)
    r.index = pd.DatetimeIndex(r.index)
    by_month = (1.0 + r).groupby([r.index.year, r.index.month]).prod() - 1.0
    table = by_month.unstack(level=1).reindex(columns=range(1, 13))
    table.index.name, table.columns.name = "year", "month"
    return table


def plot_monthly_returns(result: BacktestResult, *, label: str = "strategy") -> Figure:
    """Heatmap of the strategy's monthly net returns (%) with each year's total."""
    returns = traded_returns(result)
    table = monthly_returns(returns)
    yearly = (1.0 + returns).groupby(pd.DatetimeIndex(returns.index).year).prod() - 1.0
    values = table.to_numpy() * 100.0  # (years, 12)
    fig = Figure(figsize=(7.0, 0.9 + 0.42 * max(len(table), 2)), layout="constrained")
    ax = fig.subplots()
    finite = values[np.isfinite(values)]
    bound = float(np.max(np.abs(finite))) if finite.size else 1.0
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdYlGn", aspect="auto",
                      norm=TwoSlopeNorm(vcenter=0.0, vmin=-bound or -1.0, vmax=bound or 1.0))
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(12), MONTHS, fontsize=8)
    ax.set_yticks(range(len(table)), [f"{y}  ({yearly.get(y, np.nan) * 100:+.1f}%)" for y in table.index], fontsize=8)
    ax.set_title(f"Monthly returns of {label}, net (%; year total in brackets)", fontsize=11)
    fig.colorbar(image, ax=ax, shrink=0.8, label="%")
    return fig


def rolling_window(n_bars: int, periods_per_year: float) -> int:
    """A quarter of a year of bars, shortened to a third of the sample (at least 10 bars)."""
    return int(max(10, min(round(periods_per_year / 4), n_bars // 3)))


def plot_rolling_sharpe(result: BacktestResult, baselines: Mapping[str, BacktestResult] | None = None, *,
                        label: str = "strategy", benchmark_label: str = BENCHMARK_NAME,
                        window: int | None = None) -> Figure:
    """Annualised Sharpe ratio over a rolling window of bars (net) of every line in the equity figure."""
    ppy = result.periods_per_year
    window = window or rolling_window(len(traded_returns(result)), ppy)
    fig = Figure(figsize=(7.0, 3.4), layout="constrained")
    ax = fig.subplots()
    for name, returns, color, _ in _lines(result, baselines, label, benchmark_label):
        roll = returns.rolling(window, min_periods=window)
        sharpe = roll.mean() / roll.std(ddof=1) * np.sqrt(ppy)
        ax.plot(sharpe.index, sharpe.to_numpy(), color=color, lw=1.2, label=name)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_title(f"Rolling Sharpe ({window} bars, annualised)", fontsize=11)
    _finish(ax, ylabel="Sharpe")
    return fig


def plot_exposure_turnover(result: BacktestResult, *, label: str = "strategy") -> Figure:
    """Gross exposure and number of holdings (top) above the one-way turnover of each bar (bottom)."""
    start = _start(result)
    positions = result.positions.iloc[start:]
    fig = Figure(figsize=(7.0, 3.8), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    exposure = positions.abs().sum(axis=1) * 100.0
    top.plot(exposure.index, exposure.to_numpy(), color=COLORS["model"], lw=1.2, label="gross exposure (%)")
    holdings = (positions.abs() > 1e-9).sum(axis=1)
    twin = top.twinx()
    twin.step(holdings.index, holdings.to_numpy(), color=COLORS["baselines"][0], lw=1.0, where="post",
              label="holdings")
    twin.set_ylabel("holdings", fontsize=8)
    twin.set_ylim(0, max(int(holdings.max()) + 1, 1))
    handles = top.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    top.legend(handles, [h.get_label() for h in handles], loc="lower right", fontsize=8)
    top.set_ylim(0, max(105.0, float(exposure.max()) * 1.05))
    top.set_ylabel("exposure (%)")
    top.grid(alpha=0.3)
    turnover = result.turnover.iloc[start:] * 100.0
    bottom.bar(turnover.index, turnover.to_numpy(), width=1.0, color=COLORS["model"], alpha=0.7)
    _finish(bottom, ylabel="turnover (%)", legend=False)
    top.set_title(f"Exposure and turnover of {label}", fontsize=11)
    return fig
