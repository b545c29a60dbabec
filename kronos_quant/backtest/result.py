"""The outcome of a backtest: ``BacktestResult``, and its assembly from a simulation's fills.

``collect_result`` books the vectorbt order records (strategy, benchmark and their gross twins,
in cash-sharing groups of N columns) into equity, returns, positions, orders, costs and turnover.
Knows nothing about trading rules or how the fills were simulated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BacktestResult", "collect_result"]

_NET, _BENCH, _GROSS, _GROSS_BENCH = range(4)


@dataclass
class BacktestResult:
    """Outcome of ``backtest_weights``; every frame is indexed by the panel's bar timestamps (T).

    returns / benchmark_returns: (T,) simple return per bar, net of costs (first bar vs init_cash).
    gross_returns / gross_benchmark_returns: (T,) the same with zero costs (None if not run).
    equity / benchmark_equity / gross_equity: (T,) portfolio value in cash at each close.
    positions: (T, N) weight held per instrument at each close (asset value / portfolio value).
    orders: one row per fill: timestamp, instrument, side ("buy"/"sell"), size (shares), price
        (after slippage), value (size * price), fees (cash, commission incl. fixed/min fees).
    costs: (T, 3) cash paid per bar: fees, slippage (size * |price - open|), total.
    turnover: (T,) one-way turnover per bar: 0.5 * traded value / portfolio value at the previous
        close (replacing every holding = 1.0). The first purchase counts: buying a full book from
        cash is 0.5 on its bar, as it is traded and pays costs like any rebalance (unlike
        ``metrics.signal_turnover`` of target weights, whose first row is NaN); run summaries
        average over the bars that traded (``report.summarize_backtest``: mean_turnover).
    targets: (T, N) target weights sent at each open after masking (NaN = no order).
    blocked: (T, N) True where a wanted order was blocked (price limit or no price) or cut back (T+1).
    """

    returns: pd.Series
    benchmark_returns: pd.Series
    gross_returns: pd.Series | None
    gross_benchmark_returns: pd.Series | None
    equity: pd.Series
    benchmark_equity: pd.Series
    gross_equity: pd.Series | None
    positions: pd.DataFrame
    orders: pd.DataFrame
    costs: pd.DataFrame
    turnover: pd.Series
    targets: pd.DataFrame
    blocked: pd.DataFrame
    periods_per_year: float
    init_cash: float
    settings: dict[str, Any] = field(default_factory=dict)


def _returns(value: np.ndarray, init_cash: float) -> np.ndarray:
    prev = np.concatenate([[init_cash], value[:-1]])
    return value / prev - 1.0


def _account(records: np.ndarray, close: np.ndarray, n: int, init_cash: float) -> tuple[np.ndarray, np.ndarray]:
    """Asset values (T, G*N) and group values (T, G) at each close from the fills, as vectorbt books them.

    position = running sum of signed fill sizes; cash = init_cash - buy cost + sell proceeds - fees.
    (Computed here rather than with ``Portfolio.value()``, which costs seconds of numba compilation.)
    """
    n_bars, n_cols = close.shape
    signed = np.where(records["side"] == 0, records["size"], -records["size"])
    flow = np.zeros((n_bars, n_cols))  # (T, G*N) shares bought (+) / sold (-) per bar
    np.add.at(flow, (records["idx"], records["col"]), signed)
    cash_flow = np.zeros((n_bars, n_cols))  # (T, G*N) cash in (+) / out (-) per bar
    np.add.at(cash_flow, (records["idx"], records["col"]), -signed * records["price"] - records["fees"])
    asset_value = np.cumsum(flow, axis=0) * close
    group = lambda a: a.reshape(n_bars, n_cols // n, n).sum(axis=2)  # noqa: E731  (T, G)
    value = init_cash + np.cumsum(group(cash_flow), axis=0) + group(asset_value)
    return asset_value, value


def collect_result(records: np.ndarray, close: np.ndarray, n: int, open_w: pd.DataFrame, targets: np.ndarray,
             blocked: np.ndarray, *, init_cash: float, with_gross: bool, periods_per_year: float,
             settings: dict[str, Any]) -> BacktestResult:
    bars, instruments = open_w.index, open_w.columns
    asset_value, value = _account(records, close, n, init_cash)
    asset_value = asset_value[:, :n]  # (T, N) the strategy, net of costs
    rec = records[records["col"] < n]
    trade_value = rec["size"] * rec["price"]
    open_px = open_w.to_numpy()[rec["idx"], rec["col"]]
    slip_cost = rec["size"] * np.abs(rec["price"] - open_px)
    orders = pd.DataFrame({
        "timestamp": bars[rec["idx"]],
        "instrument": instruments[rec["col"]].astype(str),
        "side": np.where(rec["side"] == 0, "buy", "sell"),
        "size": rec["size"],
        "price": rec["price"],
        "value": trade_value,
        "fees": rec["fees"],
    }).sort_values(["timestamp", "instrument"], kind="stable").reset_index(drop=True)
    fee_bar = np.bincount(rec["idx"], weights=rec["fees"], minlength=len(bars))
    slip_bar = np.bincount(rec["idx"], weights=slip_cost, minlength=len(bars))
    traded = np.bincount(rec["idx"], weights=trade_value, minlength=len(bars))
    prev_value = np.concatenate([[init_cash], value[:-1, _NET]])

    def series(col: int, kind: str) -> pd.Series:
        data = value[:, col] if kind == "equity" else _returns(value[:, col], init_cash)
        return pd.Series(data, index=bars, name=kind)

    return BacktestResult(
        returns=series(_NET, "returns"),
        benchmark_returns=series(_BENCH, "returns"),
        gross_returns=series(_GROSS, "returns") if with_gross else None,
        gross_benchmark_returns=series(_GROSS_BENCH, "returns") if with_gross else None,
        equity=series(_NET, "equity"),
        benchmark_equity=series(_BENCH, "equity"),
        gross_equity=series(_GROSS, "equity") if with_gross else None,
        positions=pd.DataFrame(asset_value / value[:, [_NET]], index=bars, columns=instruments),
        orders=orders,
        costs=pd.DataFrame({"fees": fee_bar, "slippage": slip_bar, "total": fee_bar + slip_bar}, index=bars),
        turnover=pd.Series(0.5 * traded / prev_value, index=bars, name="turnover"),
        targets=pd.DataFrame(targets, index=bars, columns=instruments),
        blocked=pd.DataFrame(blocked, index=bars, columns=instruments),
        periods_per_year=float(periods_per_year),
        init_cash=float(init_cash),
        settings=settings,
    )
