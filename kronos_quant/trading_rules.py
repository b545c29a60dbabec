"""Exchange trading rules the backtest enforces: price limits (by A-share board and date) and the
fees that depend on an order's side (stamp duty) or size (minimum commission); T+1 settlement is
enforced on shares inside the simulation (``backtest.sessions``).

``backtest.backtest_weights`` calls these on (T, N) arrays of bars x instruments:

- ``price_limits``: the daily limit of each instrument on each bar. ``"a_share"`` reads the board
  from the code (600000 / 000001 main board, 300xxx ChiNext, 688xxx STAR, 8xxxxx / 43xxxx / 92xxxx
  Beijing) and applies ``A_SHARE_LIMITS`` for the bar's date (ChiNext went from 10% to 20% on
  2020-08-24; main-board ST stocks from 5% to 10% on ``ST_LIMIT_CHANGE``); a number applies to all.
- ``limit_flags``: limit-up / limit-down at a bar's open against the previous session's last close.
- ``mask_orders``: blanks orders that a rule forbids: buys at limit-up, sells at limit-down, any
  order without a price. T+1 (shares bought in a session are not sold in it) is a rule on shares,
  which only the simulation knows: ``backtest.sessions`` caps each sell at the shares held since
  before the session.
- ``side_fees``: from one simulation's fills, the per-order extras for the next run: ``sell_tax``
  as an extra fee rate on each sell and the shortfall to ``min_fee`` of each order's commission.

Knows nothing about configs, markets, signals or vectorbt.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["A_SHARE_LIMITS", "ST_LIMIT_CHANGE", "a_share_board", "price_limits", "limit_flags", "mask_orders",
           "side_fees"]

logger = logging.getLogger(__name__)

Board = Literal["main", "chinext", "star", "bse", "st", "unknown"]
ST_LIMIT_CHANGE = dt.date(2026, 7, 6)  # main-board ST/*ST: +-5% before, +-10% from this day (SSE/SZSE
# trading rules, 2026 revision, published 2026-04-24; sources in kronos_quant.markets)
# board -> ((first day it applies or None, limit), ...) ascending
A_SHARE_LIMITS: dict[str, tuple[tuple[dt.date | None, float], ...]] = {
    "main": ((None, 0.10),),
    "chinext": ((None, 0.10), (dt.date(2020, 8, 24), 0.20)),
    "star": ((None, 0.20),),
    "bse": ((None, 0.30),),
    "st": ((None, 0.05), (ST_LIMIT_CHANGE, 0.10)),
    "unknown": ((None, 0.10),),
}
_DIGITS = re.compile(r"(\d{6})")


def a_share_board(code: str) -> Board:
    """The board of an A-share code (``600519``, ``600519.SH``, ``sz.000001``, ``SZ300750`` ...)."""
    m = _DIGITS.search(str(code))
    if m is None:
        return "unknown"
    c = m.group(1)
    if c.startswith(("688", "689")):
        return "star"
    if c.startswith(("300", "301", "302")):
        return "chinext"
    if c.startswith(("60", "000", "001", "002", "003")):
        return "main"
    if c.startswith(("8", "43", "92")):
        return "bse"
    return "unknown"


def _schedule_limit(board: str, days: np.ndarray) -> np.ndarray:
    """(T,) limit of ``board`` on each day (numpy datetime64[D])."""
    out = np.full(len(days), np.nan)
    for since, limit in A_SHARE_LIMITS[board]:
        on = np.ones(len(days), bool) if since is None else days >= np.datetime64(since, "D")
        out[on] = limit
    return out


def price_limits(instruments: Sequence[str], bars: pd.DatetimeIndex, rule: float | str | None, *,
                 st_instruments: Iterable[str] = ()) -> np.ndarray | None:
    """(T, N) price limit (fraction of the previous close) per bar and instrument, or None for no limits.

    rule: None, a fraction for every instrument, or ``"a_share"`` (boards and dates: module docstring);
    st_instruments: risk-warning stocks (main board: the ST limit; ChiNext/STAR keep their 20%).
    """
    if rule is None:
        return None
    if not isinstance(rule, str):
        return np.full((len(bars), len(instruments)), float(rule))
    if rule != "a_share":
        raise ValueError(f"price limit rule must be a fraction, 'a_share' or None, got {rule!r}")
    days = np.asarray(bars.tz_localize(None) if bars.tz is not None else bars, dtype="datetime64[D]")
    st = {str(s) for s in st_instruments}
    boards = [a_share_board(i) for i in instruments]
    unknown = [i for i, b in zip(instruments, boards) if b == "unknown"]
    if unknown:
        logger.warning("price limits: %d instrument(s) are not A-share codes (e.g. %s); the main board's 10%% "
                       "applies to them", len(unknown), ", ".join(map(str, unknown[:5])))
    cols = [_schedule_limit("st" if (str(i) in st and b == "main") else b, days) for i, b in zip(instruments, boards)]
    return np.stack(cols, axis=1) if cols else np.zeros((len(bars), 0))


def limit_flags(open_w: pd.DataFrame, close_w: pd.DataFrame, limits: np.ndarray | None, tol: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """(T, N) limit-up and limit-down flags: the bar's open at least ``limits`` above (below) the previous
    session's last close, within ``tol``. A session is a calendar date, so intraday bars compare with the
    previous day's last close. No flags where ``limits`` is None."""
    shape = open_w.shape
    if limits is None:
        return np.zeros(shape, bool), np.zeros(shape, bool)
    day = open_w.index.normalize()
    last_close = close_w.ffill().groupby(day).last()  # (D, N)
    ref = last_close.shift(1).reindex(day).to_numpy()  # (T, N)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.nan_to_num(open_w.to_numpy() / ref - 1.0, nan=0.0)
    return change >= limits - tol, change <= -limits + tol


def mask_orders(targets: np.ndarray, can_buy: np.ndarray, can_sell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blank (NaN) the orders in ``targets`` (T, N) that a rule forbids; returns (targets, blocked).

    Direction is judged against the last executed target per instrument; a target equal to it (a
    drift rebalance of unknown direction) is blocked when either side is.
    blocked: (T, N) True where a wanted order was removed.
    """
    out = targets.copy()
    blocked = np.zeros(targets.shape, bool)
    held = np.zeros(targets.shape[1])  # last executed target
    eps = 1e-12
    for t in np.flatnonzero(np.isfinite(targets).any(axis=1)):
        tgt = out[t]
        has = np.isfinite(tgt)
        up, down = has & (tgt > held + eps), has & (tgt < held - eps)
        same = has & ~up & ~down
        block = (up & ~can_buy[t]) | (down & ~can_sell[t]) | (same & ~(can_buy[t] & can_sell[t]))
        tgt[block] = np.nan
        blocked[t] = block & ~(same & (held == 0.0))
        ok = has & ~block
        held[ok] = tgt[ok]
    return out, blocked


def side_fees(records: np.ndarray, shape: tuple[int, int], *, pays: np.ndarray, fees: float, min_fee: float,
              sell_tax: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-order fee extras for the next simulation, from one simulation's fill ``records`` (vectorbt order
    records: idx, col, size, price, side with 1 = sell).

    Returns (rate, fixed), each (T, C): ``sell_tax`` on the bars and columns where a sell filled (an
    extra fraction of its value) and the shortfall max(min_fee - fees * value, 0) of each fill's
    commission (an extra fixed fee), for the columns with ``pays`` (C,) > 0.
    """
    rate, fixed = np.zeros(shape), np.zeros(shape)
    rec = records[pays[records["col"]] > 0]
    value = rec["size"] * rec["price"]
    sells = rec["side"] == 1
    rate[rec["idx"][sells], rec["col"][sells]] = sell_tax
    if min_fee > 0:
        fixed[rec["idx"], rec["col"]] = np.maximum(min_fee - fees * value, 0.0)
    return rate, fixed
