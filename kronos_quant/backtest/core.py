"""The backtest engine: ``backtest_weights`` (rules and timing: the package docstring, ``kronos_quant.backtest``).

Turns weights into (T, G*N) order arrays for four cash-sharing groups (strategy, benchmark and
their gross twins), runs vectorbt's ``Portfolio.from_orders`` -- or, when T+1 can bind (several
bars in a session), the share-level T+1 simulation of ``backtest.sessions`` -- re-runs it to settle
minimum fees and stamp duty, and hands the fills to ``backtest.result``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import vectorbt as vbt

from kronos_quant.backtest.result import BacktestResult, collect_result
from kronos_quant.backtest.sessions import simulate_t1
from kronos_quant.data.calendar import infer_periods_per_year
from kronos_quant.data.panel import panel_to_wide
from kronos_quant.errors import DataError
from kronos_quant.trading_rules import limit_flags, mask_orders, price_limits, side_fees

__all__ = ["BENCHMARK_NAME", "BacktestResult", "backtest_weights", "execution_targets"]

BENCHMARK_NAME = "equal-weight buy and hold"  # how tables, verdicts and figure legends name the benchmark

logger = logging.getLogger(__name__)

_MIN_FEE_PASSES = 4  # extra simulations at most to settle min_fee (each refines the previous order values)


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
              freq: pd.Timedelta, sessions: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """One simulation of ``n_groups`` cash-sharing groups of equal width (arrays (T, G*N)): (order records,
    T+1 caps (T, G*N) or None). ``sessions`` (T,): the session of each bar for T+1 on shares
    (``backtest.sessions``); None: vectorbt's ``from_orders`` with no settlement rule."""
    if sessions is not None:
        return simulate_t1(close, price, size, fees, fixed, slippage, sessions=sessions, n_groups=n_groups,
                           init_cash=init_cash, granularity=granularity, index=index, freq=freq)
    n = close.shape[1] // n_groups
    cols = pd.RangeIndex(close.shape[1])
    pf = vbt.Portfolio.from_orders(
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
    return pf.orders.values, None


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
    (shares bought in a session are not sold in it: ``backtest.sessions``).
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
        raise DataError(f"the panel needs at least 2 bars to execute at the next open, got {n_bars}"
                        + (f" ({bars[0]})" if n_bars else "") + "; pass a longer period (a backtest's "
                        "backtest.start .. backtest.end)")

    raw = execution_targets(weights, bars, instruments)  # (T, N)
    tradeable = np.isfinite(open_w.to_numpy()) & (open_w.to_numpy() > 0)
    limits = price_limits(list(instruments), bars, price_limit, st_instruments=st_instruments)
    up, down = limit_flags(open_w, close_w, limits, limit_tolerance)
    if settlement not in ("T+0", "T+1"):
        raise ValueError(f"settlement must be 'T+0' or 'T+1', got {settlement!r}")
    days = np.asarray(bars.tz_localize(None) if bars.tz is not None else bars, dtype="datetime64[D]").astype(np.int64)
    t1_binds = settlement == "T+1" and bool((np.diff(days) == 0).any())  # some session has several bars
    targets, blocked = mask_orders(raw, tradeable & ~up, tradeable & ~down)
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
           "granularity": np.nan if lot_size is None else float(lot_size), "sessions": days if t1_binds else None}
    records, capped = _simulate(close_val, price, size, fee_row, fixed_row, slip_row, **sim)
    rate, extra = np.zeros(size.shape), np.zeros(size.shape)  # (T, G*N) sell tax and min-fee shortfalls
    for _ in range(_MIN_FEE_PASSES if (min_fee > 0 or sell_tax > 0) else 0):
        new_rate, new_extra = side_fees(records, size.shape, pays=pays[0], fees=fees, min_fee=min_fee,
                                        sell_tax=sell_tax)
        if np.array_equal(new_rate, rate) and np.allclose(new_extra, extra, rtol=0.0, atol=1e-9 * max(min_fee, 1.0)):
            break
        rate, extra = new_rate, new_extra
        records, capped = _simulate(close_val, price, size, fee_row + rate, fixed_row + extra, slip_row, **sim)
    if capped is not None:
        blocked = blocked | capped[:, :n]  # the strategy's sells that T+1 cut back or blocked
    return collect_result(records, close_val, n, open_w, targets, blocked, init_cash=init_cash,
                          with_gross=with_gross, periods_per_year=periods_per_year or infer_periods_per_year(bars),
                          settings={**cost_args, "init_cash": init_cash, "price_limit": price_limit,
                                    "limit_tolerance": limit_tolerance, "lot_size": lot_size,
                                    "settlement": settlement, "st_instruments": list(st_instruments),
                                    "freq": str(freq)})


