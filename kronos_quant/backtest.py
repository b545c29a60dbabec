"""Backtest: target weights + OHLCV panel -> simulated portfolio (the only module that imports vectorbt).

Owns execution rules, costs and the equal-weight benchmark:
- Timing: a weight row dated t (decided with information up to the close of bar t) is traded at
  the OPEN of the first bar strictly after t, never at the close of the bar that produced it.
  Positions are valued at each bar's close.
- Rebalancing: ``vectorbt.Portfolio.from_orders`` with ``size_type="targetpercent"``, cash shared
  across instruments, ``call_seq="auto"`` (sells before buys); target percents are of the
  portfolio value at the execution bar's open. Bars without a rebalance carry NaN orders.
- Costs: ``fees`` (fraction of traded value), ``slippage`` (fraction of price, adverse: buys at
  open * (1 + s), sells at open * (1 - s)), ``fixed_fee`` (cash per filled order, vectorbt's
  ``fixed_fees``) and ``min_fee``: a true minimum commission, fee = max(fees * value, min_fee).
  vectorbt has no minimum-fee option, so ``min_fee`` re-runs the simulation: each run adds, as a
  fixed fee on the same bar and instrument, the shortfall max(min_fee - fees * value, 0) of every
  order of the previous run (order values move a little because the extra fees change the cash),
  until the shortfalls stop changing (at most 4 extra runs; the error shrinks by a factor of about
  ``fees`` per run). An order that only appears in a later run pays no minimum. ``sell_tax``
  (stamp duty) is charged on sells only the same way: each re-run adds it to the fee rate of
  the bars and instruments where the previous run sold. ``lot_size`` rounds every order down to
  whole lots (vectorbt's ``size_granularity``).
- Trading rules (``kronos_quant.trading_rules``): price limits, and ``settlement="T+1"`` (shares
  bought on a day are not sold that day; binds on intraday bars).
- Price limits (A-share style, optional): with ``price_limit=0.1`` a bar whose open is at least
  10% above the previous session's close (limit-up; within ``limit_tolerance``) accepts no buy,
  and a bar opening 10% below (limit-down) accepts no sell. A session is a calendar date, so on
  intraday bars the reference is the previous day's last close. Whether an order buys or sells is
  judged against the last target that was executed for that instrument; blocked orders become
  NaN (the position is kept). Orders on bars without a price (missing open) are blocked too.
  ``price_limit="a_share"`` takes each instrument's limit from its board and the bar's date.
- Benchmark: equal weight buy-and-hold of every instrument of the panel that has an open on the
  first execution bar, bought on that bar with the same costs and limit rule, sized so that the
  purchase fits the cash after costs, then never rebalanced.
- Gross results: the same strategy and benchmark with zero costs, simulated in the same call.
Knows nothing about forecasts, signals, metrics, files or plots.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import vectorbt as vbt

from kronos_quant.data.calendar import infer_periods_per_year
from kronos_quant.data.panel import panel_to_wide
from kronos_quant.errors import DataError
from kronos_quant.trading_rules import limit_flags, mask_orders, price_limits, side_fees

__all__ = ["BENCHMARK_NAME", "BacktestResult", "backtest_weights", "execution_targets"]

BENCHMARK_NAME = "equal-weight buy and hold"  # how tables, verdicts and figure legends name the benchmark

logger = logging.getLogger(__name__)

_NET, _BENCH, _GROSS, _GROSS_BENCH = range(4)
_MIN_FEE_PASSES = 4  # extra simulations at most to settle min_fee (each refines the previous order values)


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


def execution_targets(weights: pd.DataFrame, bars: pd.DatetimeIndex, instruments: pd.Index) -> np.ndarray:
    """(T, N) targets on the bar after each weight row (first bar strictly later); NaN elsewhere.

    Instruments missing from ``weights`` get 0.0 on rebalance bars. Rows dated at or after the last
    bar are dropped; when several rows map to one bar the last one wins.
    """
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(weights.index))
    except (TypeError, ValueError) as exc:
        raise DataError(f"weights index must hold dates (the rebalance as-of dates), got {weights.index[:3].tolist()}") from exc
    try:
        pos = bars.searchsorted(idx, side="right")
    except TypeError as exc:
        raise DataError(
            "weights index and panel timestamps differ in timezone awareness; make both naive "
            "(Series.dt.tz_localize(None)) or both tz-aware (tz_localize/tz_convert)"
        ) from exc
    frame = weights.reindex(columns=instruments).to_numpy(dtype=np.float64)  # (R, N)
    missing = ~instruments.isin(weights.columns)
    out = np.full((len(bars), len(instruments)), np.nan)
    n_late = int((pos >= len(bars)).sum())
    if n_late:
        logger.info("%d weight row(s) dated at or after the last bar are not traded", n_late)
    if len(np.unique(pos[pos < len(bars)])) < int((pos < len(bars)).sum()):
        logger.warning("several weight rows map to the same execution bar; the last one is used")
    for r, p in enumerate(pos):
        row = frame[r].copy()
        if p >= len(bars) or not np.isfinite(row).any():
            continue  # after the last bar, or an all-NaN weight row (no rebalance)
        row[missing] = 0.0
        out[p] = row
    return out


def _benchmark_targets(targets: np.ndarray, tradeable: np.ndarray, can_buy: np.ndarray, *, cost_factor: float,
                       reserve: float, init_cash: float) -> np.ndarray:
    """(T, N) one buy row at the first execution bar: equal weight, sized to fit the cash after costs."""
    out = np.full(targets.shape, np.nan)
    rows = np.flatnonzero(np.isfinite(targets).any(axis=1))
    if rows.size == 0:
        return out
    t0 = rows[0]
    names = np.flatnonzero(tradeable[t0])
    if names.size == 0:
        return out
    weight = (1.0 - names.size * reserve / init_cash) / (names.size * cost_factor)
    out[t0, names] = max(weight, 0.0)
    out[t0, ~can_buy[t0]] = np.nan
    return out


def _simulate(close: np.ndarray, price: np.ndarray, size: np.ndarray, fees: np.ndarray, fixed: np.ndarray,
              slippage: np.ndarray, *, n_groups: int, init_cash: float, granularity: float, index: pd.DatetimeIndex,
              freq: pd.Timedelta) -> Any:
    """One vectorbt simulation of ``n_groups`` cash-sharing groups of equal width (arrays (T, G*N))."""
    n = close.shape[1] // n_groups
    cols = pd.RangeIndex(close.shape[1])
    return vbt.Portfolio.from_orders(
        pd.DataFrame(close, index=index, columns=cols),
        size=size,
        size_type="targetpercent",
        price=price,
        fees=fees,
        fixed_fees=fixed,
        slippage=slippage,
        size_granularity=granularity,
        init_cash=init_cash,
        group_by=np.repeat(np.arange(n_groups), n),
        cash_sharing=True,
        call_seq="auto",
        freq=freq,
    )


def _check_inputs(weights: pd.DataFrame, instruments: pd.Index, costs: dict[str, float], init_cash: float) -> None:
    if not isinstance(weights, pd.DataFrame):
        raise ValueError(f"`weights` must be a wide pandas DataFrame (dates x instruments), got {type(weights).__name__}")
    unknown = [c for c in weights.columns if c not in instruments]
    if unknown:
        raise DataError(f"weights name instruments absent from the panel: {unknown[:10]}; filter the weights or the panel")
    if np.isinf(weights.to_numpy(dtype=np.float64)).any():
        raise ValueError("weights contain inf; use finite fractions of portfolio value (NaN = no order)")
    if weights.index.has_duplicates:
        raise ValueError("weights index has duplicate dates; keep one row per rebalance date")
    for key, value in costs.items():
        if not 0.0 <= value < (1.0 if key in ("fees", "slippage", "sell_tax") else np.inf):
            raise ValueError(f"{key} must be >= 0 (and < 1 for fractions), got {value}")
    if init_cash <= 0:
        raise ValueError(f"init_cash must be > 0, got {init_cash}")


def backtest_weights(
    panel: Any,
    weights: pd.DataFrame,
    *,
    init_cash: float = 1_000_000.0,
    fees: float = 0.0,
    slippage: float = 0.0,
    fixed_fee: float = 0.0,
    min_fee: float = 0.0,
    sell_tax: float = 0.0,
    price_limit: float | str | None = None,
    limit_tolerance: float = 1e-3,
    lot_size: float | None = None,
    settlement: str = "T+0",
    st_instruments: Sequence[str] = (),
    periods_per_year: float | None = None,
    with_gross: bool = True,
) -> BacktestResult:
    """Simulate trading ``weights`` (dates x instruments, see module docstring) on ``panel``.

    panel: the standard panel (``kronos_quant.data``); its open and close are used.
    weights: target fractions of portfolio value per rebalance date (rows decided at that date's
    close, traded at the next bar's open). lot_size: shares per lot (e.g. 100); None = fractional.
    sell_tax: extra fraction of the value of sells (stamp duty). price_limit: None, a fraction, or
    "a_share" (limits by board and date; st_instruments get the ST limit); settlement: "T+0" or "T+1"
    (see ``kronos_quant.trading_rules``).
    periods_per_year: for annualisation downstream; None infers it from the bar calendar
    (``data.calendar.infer_periods_per_year``: 252 for weekday daily bars, 365 for 7-day markets).
    """
    open_w = panel_to_wide(panel, "open")
    close_w = panel_to_wide(panel, "close").reindex(index=open_w.index, columns=open_w.columns)
    bars, instruments = open_w.index, open_w.columns
    cost_args = {"fees": fees, "slippage": slippage, "fixed_fee": fixed_fee, "min_fee": min_fee, "sell_tax": sell_tax}
    _check_inputs(weights, instruments, cost_args, init_cash)
    n_bars, n = open_w.shape
    if n_bars < 2:
        raise DataError(f"the panel needs at least 2 bars to execute at the next open, got {n_bars}")

    raw = execution_targets(weights, bars, instruments)  # (T, N)
    tradeable = np.isfinite(open_w.to_numpy()) & (open_w.to_numpy() > 0)
    limits = price_limits(list(instruments), bars, price_limit, st_instruments=st_instruments)
    up, down = limit_flags(open_w, close_w, limits, limit_tolerance)
    if settlement not in ("T+0", "T+1"):
        raise ValueError(f"settlement must be 'T+0' or 'T+1', got {settlement!r}")
    days = np.asarray(bars.tz_localize(None) if bars.tz is not None else bars, dtype="datetime64[D]").astype(np.int64)
    targets, blocked = mask_orders(raw, tradeable & ~up, tradeable & ~down, days=days if settlement == "T+1" else None)
    bench_net = _benchmark_targets(raw, tradeable, tradeable & ~up, cost_factor=(1 + fees) * (1 + slippage),
                                   reserve=fixed_fee + min_fee, init_cash=init_cash)
    bench_gross = _benchmark_targets(raw, tradeable, tradeable & ~up, cost_factor=1.0, reserve=0.0, init_cash=init_cash)
    n_groups = 4 if with_gross else 2

    tile = (1, n_groups)
    close_val = np.tile(close_w.ffill().bfill().to_numpy(), tile)  # (T, G*N) valuation only; orders need an open
    price = np.tile(np.where(tradeable, open_w.to_numpy(), close_w.ffill().shift(1).bfill().to_numpy()), tile)
    size = np.hstack([targets, bench_net, targets, bench_gross][:n_groups])  # (T, G*N)
    pays = np.repeat([1.0, 1.0, 0.0, 0.0][:n_groups], n)[None, :]  # (1, G*N): net groups pay costs
    fee_row, fixed_row, slip_row = pays * fees, pays * fixed_fee, pays * slippage  # broadcast by vectorbt
    freq = pd.Series(bars).diff().median()
    sim = {"n_groups": n_groups, "init_cash": init_cash, "index": bars, "freq": freq,
           "granularity": np.nan if lot_size is None else float(lot_size)}
    pf = _simulate(close_val, price, size, fee_row, fixed_row, slip_row, **sim)
    rate, extra = np.zeros(size.shape), np.zeros(size.shape)  # (T, G*N) sell tax and min-fee shortfalls
    for _ in range(_MIN_FEE_PASSES if (min_fee > 0 or sell_tax > 0) else 0):
        new_rate, new_extra = side_fees(pf.orders.values, size.shape, pays=pays[0], fees=fees, min_fee=min_fee,
                                        sell_tax=sell_tax)
        if np.array_equal(new_rate, rate) and np.allclose(new_extra, extra, rtol=0.0, atol=1e-9 * max(min_fee, 1.0)):
            break
        rate, extra = new_rate, new_extra
        pf = _simulate(close_val, price, size, fee_row + rate, fixed_row + extra, slip_row, **sim)
    return _collect(pf.orders.values, close_val, n, open_w, targets, blocked, init_cash=init_cash, with_gross=with_gross,
                    periods_per_year=periods_per_year or infer_periods_per_year(bars),
                    settings={**cost_args, "init_cash": init_cash, "price_limit": price_limit,
                              "limit_tolerance": limit_tolerance, "lot_size": lot_size, "settlement": settlement,
                              "st_instruments": list(st_instruments), "freq": str(freq)})


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


def _collect(records: np.ndarray, close: np.ndarray, n: int, open_w: pd.DataFrame, targets: np.ndarray,
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
