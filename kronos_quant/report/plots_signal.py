"""Signal figures: IC over time, returns by score bucket, rank autocorrelation of the scores.

Inputs are wide score frames (dates x instruments) and per-date statistics; each ``plot_*``
returns a ``matplotlib.figure.Figure`` (no pyplot, never shown).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from kronos_quant.metrics import rank_autocorrelation
from kronos_quant.report.plots_portfolio import COLORS, series_color

__all__ = ["plot_ic", "plot_quantile_returns", "plot_rank_autocorrelation", "ic_frame"]


def _bar_width(index: pd.Index) -> Any:
    """0.8 of the typical spacing of a date index, in days (matplotlib's date unit); 0.8 otherwise."""
    if isinstance(index, pd.DatetimeIndex) and len(index) > 1:
        return 0.8 * (pd.Series(index).diff().median() / pd.Timedelta(days=1))
    return 0.8


def ic_frame(ic: pd.DataFrame, labels: Mapping[str, str] | None = None, *, column: str = "rank_ic") -> pd.DataFrame:
    """A long per-date IC table (date, forecaster, ic, rank_ic, n: the run's ic.parquet) as wide
    (dates x forecasters) of ``column``; ``labels`` renames forecasters (name -> display label)."""
    missing = {"date", "forecaster", column} - set(ic.columns)
    if missing:
        raise ValueError(f"the IC table lacks column(s) {sorted(missing)}; expected date, forecaster, ic, rank_ic, n")
    wide = ic.pivot_table(index="date", columns="forecaster", values=column, aggfunc="mean", sort=False)
    wide.index = pd.DatetimeIndex(wide.index)
    return wide.rename(columns=dict(labels or {})).sort_index()


def plot_ic(ic: pd.Series | pd.DataFrame, *, window: int = 20, kinds: Mapping[str, str] | None = None) -> Figure:
    """Per-date IC of the first column (the model) as bars, with the rolling mean over ``window``
    dates of every column (the model and its baselines).

    ic: a Series (one forecaster) or a DataFrame (dates x forecasters, model first).
    kinds: column -> "model" | "baseline" (colours); default: the first column is the model.
    """
    frame = ic.to_frame(ic.name or "IC") if isinstance(ic, pd.Series) else ic
    frame = frame.astype(np.float64)
    fig = Figure(figsize=(7.0, 3.4), layout="constrained")
    ax = fig.subplots()
    title = "IC over time"
    if frame.shape[1]:
        first = frame.iloc[:, 0].dropna()
        values = first.to_numpy()
        ax.bar(first.index, values, width=_bar_width(first.index), color=np.where(values >= 0, "#2a9d5c", "#c0392b"),
               alpha=0.35, label=f"{first.name} (per date)")
        title = f"{first.name} over time (mean {np.mean(values) if values.size else np.nan:.3f})"
        baseline_index = 0
        for i, name in enumerate(frame.columns):
            kind = (kinds or {}).get(str(name), "model" if i == 0 else "baseline")
            color = series_color(kind, baseline_index)
            baseline_index += kind == "baseline"
            rolling = frame[name].dropna().rolling(window, min_periods=1).mean()
            ax.plot(rolling.index, rolling.to_numpy(), color=color if kind != "model" else "black",
                    lw=1.6 if i == 0 else 1.2, label=f"{name}, rolling mean ({window})")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_title(title, fontsize=11)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return fig


def plot_quantile_returns(bucket_returns: pd.DataFrame) -> Figure:
    """Mean forward return per score bucket (left) and cumulative bucket returns over time (right).

    bucket_returns: (T, Q) from ``metrics.quantile_returns`` (columns 1..Q, 1 = lowest scores).
    """
    fig = Figure(figsize=(7.0, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1, 2))
    means = bucket_returns.mean()
    left.bar([str(c) for c in means.index], means.to_numpy() * 1e4, color=COLORS["model"])
    left.axhline(0.0, color="black", lw=0.6)
    left.set_xlabel("score bucket (1 = lowest)", fontsize=8)
    left.set_ylabel("mean forward return (bp)", fontsize=8)
    left.grid(alpha=0.3)
    growth = (1.0 + bucket_returns.fillna(0.0)).cumprod()
    cmap = {c: (i / max(len(growth.columns) - 1, 1)) for i, c in enumerate(growth.columns)}
    for col in growth.columns:
        right.plot(growth.index, growth[col].to_numpy(), color=colormaps["viridis"](0.85 * cmap[col]), lw=1.2,
                   label=f"Q{col}")
    right.set_ylabel("cumulative (start = 1)", fontsize=8)
    right.legend(loc="best", ncol=2, fontsize=8)
    right.grid(alpha=0.3)
    right.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.suptitle("Forward returns by score bucket", fontsize=11)
    return fig


def plot_rank_autocorrelation(scores: Mapping[str, pd.DataFrame], *, kinds: Mapping[str, str] | None = None
                              ) -> Figure:
    """Spearman correlation of each score cross-section with the previous one, per date, for each
    forecaster (label -> wide scores; model first). High = stable ranking = low turnover."""
    fig = Figure(figsize=(7.0, 3.4), layout="constrained")
    ax = fig.subplots()
    baseline_index = 0
    for i, (name, frame) in enumerate(scores.items()):
        kind = (kinds or {}).get(name, "model" if i == 0 else "baseline")
        ac = rank_autocorrelation(frame.dropna(how="all"))
        ax.plot(ac.index, ac.to_numpy(), color=series_color(kind, baseline_index), lw=1.2,
                label=f"{name} (mean {ac.mean():.2f})")
        baseline_index += kind == "baseline"
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_title("Rank autocorrelation of the scores (lag 1 rebalance)", fontsize=11)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return fig
