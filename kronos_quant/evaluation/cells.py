"""The cells every forecaster is judged on, and the labels it is judged against.

A *cell* is an (as-of date, instrument) pair where the strategy's model made a forecast: the
forecast table fixes the schedule (backtest start/end, rebalance) and the universe (instruments
with enough history). The model, every baseline and the benchmark are scored and traded on these
cells only, so no comparison mixes cross-sections. The *label* is the h-bar forward return an
IC is computed against (``LABELS``). Knows nothing about models, metrics or reports.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from kronos_quant.data.bounds import parse_bound
from kronos_quant.data.panel import panel_to_wide
from kronos_quant.signals import as_pandas, forward_returns

__all__ = ["LABELS", "label_returns", "cell_mask", "on_forecast_cells", "rebalance_bars", "backtest_panel"]

LABELS: dict[str, str] = {  # name -> what the h-bar forward return spans; t is the as-of bar
    "next_open": "open t+1 -> open t+1+h",
    "close_to_close": "close t -> close t+h",
    "qlib": "close t+1 -> close t+1+h",
}


def label_returns(panel: pl.DataFrame, *, horizon: int, label: str = "next_open") -> pd.DataFrame:
    """Evaluation labels (an IC's forward return) at each bar t, counted on each instrument's own bars.

    label: "next_open" (open[t+1+h] / open[t+1] - 1: what a strategy deciding at the close of t and
    trading at the next open can earn), "close_to_close" (close[t+h] / close[t] - 1: the forecast's
    own target) or "qlib" (close[t+1+h] / close[t+1] - 1: qlib's default ``Ref($close, -h-1) /
    Ref($close, -1) - 1``). Returns (T, N) like ``signals.forward_returns`` (index named asof);
    labels that reach past an instrument's last bar are NaN.
    """
    if label not in LABELS:
        raise ValueError(f"label must be one of {list(LABELS)}, got {label!r}")
    if label == "close_to_close":
        return forward_returns(panel, horizon=horizon)
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    price = pl.col("open" if label == "next_open" else "close")
    wide = panel_to_wide(panel, price.shift(-1 - horizon) / price.shift(-1) - 1.0)
    wide.index.name = "asof"
    return wide.replace([np.inf, -np.inf], np.nan)


def cell_mask(forecasts: Any) -> pd.DataFrame:
    """(dates, instruments) bool frame: True where the forecast table has a forecast.

    Index: the table's as-of dates (sorted, named asof); columns: its instruments (sorted).
    """
    df = as_pandas(forecasts, name="forecasts")[["asof", "instrument"]].drop_duplicates()
    df["asof"] = pd.to_datetime(df["asof"])
    mask = df.assign(on=True).pivot(index="asof", columns="instrument", values="on").sort_index()
    mask = mask.reindex(sorted(mask.columns), axis=1).fillna(False).astype(bool)
    mask.columns.name = "instrument"
    return mask


def on_forecast_cells(scores: pd.DataFrame, cells: Any) -> pd.DataFrame:
    """``scores`` on the cells only, NaN elsewhere; cells: a forecast table or its :func:`cell_mask`.

    Returns a float frame with the mask's index and columns: a panel signal such as momentum then
    follows the strategy's schedule (backtest start/end, rebalance) and universe (instruments with
    enough history) exactly as the forecasts do.
    """
    mask = cells if isinstance(cells, pd.DataFrame) and cells.dtypes.eq(bool).all() else cell_mask(cells)
    return scores.reindex(index=mask.index, columns=mask.columns).where(mask).astype(np.float64)


def rebalance_bars(rebalance: Any, asofs: pd.Index, panel: pl.DataFrame) -> int:
    """Bars between consecutive as-of dates, for HAC lags: ``rebalance`` when it is a number of bars,
    else the smallest gap (in bars of the panel's calendar) between the given dates -- the smaller the
    gap, the more labels overlap, so this is the conservative choice."""
    if isinstance(rebalance, int):
        return rebalance
    calendar = pd.DatetimeIndex(panel["timestamp"].unique().sort().to_pandas())
    positions = np.unique(calendar.searchsorted(pd.DatetimeIndex(asofs)))
    return max(int(np.diff(positions).min()), 1) if positions.size > 1 else 1


def _bound(panel: pl.DataFrame, value: Any, *, is_end: bool) -> pd.Timestamp | None:
    return parse_bound(value, tz=getattr(panel.schema["timestamp"], "time_zone", None), is_end=is_end)


def backtest_panel(panel: pl.DataFrame, instruments: list[str], *, first: Any, end: dt.date | None) -> pl.DataFrame:
    """The bars a strategy is simulated on: its instruments, from its first as-of date through
    ``end`` (backtest.end, whole day; None: the panel's last bar)."""
    out = panel.filter(pl.col("instrument").is_in(instruments)
                       & (pl.col("timestamp") >= pl.lit(_bound(panel, first, is_end=False))))
    if end is not None:
        out = out.filter(pl.col("timestamp") <= pl.lit(_bound(panel, end, is_end=True)))
    return out
