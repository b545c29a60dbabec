"""T+1 on shares: a vectorbt simulation that caps every sell at the shares held since before the session.

A-shares bought in a session cannot be sold in that session. The cap is a number of shares --
the position held at the session's start minus what was already sold in it, equivalently
``position - shares bought this session`` -- and it depends on the simulation's own fills (how
many shares a target weight bought depends on the portfolio value, costs and lots). vectorbt's
``Portfolio.from_orders`` takes a fixed ``max_size`` per order, fixed before the run, so it cannot
express the cap; this module runs ``Portfolio.from_order_func`` instead, with three small numba
callbacks that reproduce ``from_orders`` (size_type ``targetpercent`` of the group value, the
valuation price = the order price, ``call_seq="auto"``: sells before buys by approximate order
value, the same fees, fixed fees, slippage and lots) and add the rule:

- pre-segment (each bar with an order): on a new session (calendar date) the per-column count of
  shares bought resets to 0; valuation prices are set to the order prices; the call sequence is
  sorted like vectorbt's ``auto``.
- order: the target percent becomes a share delta as vectorbt computes it (target x group value /
  valuation price - position). A sell gets ``max_size = position - bought`` (vectorbt then rounds
  it down to whole lots); with nothing sellable there is no order. Either case is flagged in
  ``capped`` (T, C) when it removed shares that the target (in whole lots) would have sold.
- post-order: a filled buy adds its size to the column's shares bought this session.

So the rule is exact at the share level, whatever the prices do within the session. The
callbacks and vectorbt's simulation loop are compiled for them on first use, 4-7 s per process on 2 cores
(not cached on disk: numba would not notice a vectorbt upgrade under a cached caller); after that
a run is as fast as ``from_orders``. ``backtest.core`` therefore uses this path only when it can
matter: ``settlement="T+1"`` with several bars in some session. With one
bar per session (daily bars) every order executes in a later session than every earlier fill, so
T+1 never binds and ``from_orders`` is used.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import vectorbt as vbt
from numba import njit
from vectorbt.portfolio import nb as vnb
from vectorbt.portfolio.enums import Direction, OrderSide, OrderStatus, SizeType

__all__ = ["simulate_t1"]

_EPS = 1e-9  # shares: below this a cap is treated as zero


@njit
def _pre_segment(c: Any, bought: np.ndarray, session_now: np.ndarray, order_value: np.ndarray, size: np.ndarray,
                 price: np.ndarray, session: np.ndarray) -> tuple[np.ndarray]:
    if session[c.i] != session_now[c.group]:
        session_now[c.group] = session[c.i]
        for col in range(c.from_col, c.to_col):
            bought[col] = 0.0
    for col in range(c.from_col, c.to_col):
        p = vnb.get_col_elem_nb(c, col, price)
        if not np.isnan(p):
            c.last_val_price[col] = p
    vnb.sort_call_seq_nb(c, size, np.asarray(SizeType.TargetPercent), np.asarray(Direction.Both),
                         order_value[c.from_col:c.to_col])
    return (bought,)


@njit
def _order(c: Any, bought: np.ndarray, size: np.ndarray, price: np.ndarray, fees: np.ndarray, fixed: np.ndarray,
           slippage: np.ndarray, granularity: float, capped: np.ndarray) -> Any:
    target = vnb.get_elem_nb(c, size)
    if np.isnan(target):
        return vnb.order_nothing_nb()
    cap = np.inf
    if c.value_now > 0 and c.val_price_now > 0:
        delta = target * c.value_now / c.val_price_now - c.position_now  # shares, as vectorbt converts the target
        want = -delta if np.isnan(granularity) else (-delta // granularity) * granularity
        if delta < 0:
            cap = max(c.position_now - bought[c.col], 0.0)
            if want > cap + _EPS:
                capped[c.i, c.col] = True
            if cap <= _EPS:
                return vnb.order_nothing_nb()
    return vnb.order_nb(size=target, price=vnb.get_elem_nb(c, price), size_type=SizeType.TargetPercent,
                        fees=vnb.get_elem_nb(c, fees), fixed_fees=vnb.get_elem_nb(c, fixed),
                        slippage=vnb.get_elem_nb(c, slippage), max_size=cap, size_granularity=granularity)


@njit
def _post_order(c: Any, bought: np.ndarray) -> None:
    if c.order_result.status == OrderStatus.Filled and c.order_result.side == OrderSide.Buy:
        bought[c.col] += c.order_result.size


def simulate_t1(close: np.ndarray, price: np.ndarray, size: np.ndarray, fees: np.ndarray, fixed: np.ndarray,
                slippage: np.ndarray, *, sessions: np.ndarray, n_groups: int, init_cash: float, granularity: float,
                index: pd.DatetimeIndex, freq: pd.Timedelta) -> tuple[np.ndarray, np.ndarray]:
    """The T+1 simulation of ``n_groups`` cash-sharing groups of equal width: arrays (T, C) with C = G*N,
    fee arrays broadcastable to (T, C); sessions (T,) integer session (calendar day) of each bar.

    Returns (order records as vectorbt's ``from_orders`` gives them, capped (T, C) bool).
    """
    n_bars, n_cols = close.shape
    n = n_cols // n_groups
    group = np.repeat(np.arange(n_groups), n)
    active = np.isfinite(size).reshape(n_bars, n_groups, n).any(axis=2)  # (T, G) bars with an order
    capped = np.zeros((n_bars, n_cols), dtype=np.bool_)
    as2d = lambda a: np.ascontiguousarray(np.atleast_2d(np.asarray(a, dtype=np.float64)))  # noqa: E731  (1 or T, C)
    size, price = as2d(size), as2d(price)  # (T, C); a fee row (1, C) is broadcast by vectorbt's flexible indexing
    state = (np.zeros(n_cols), np.full(n_groups, np.iinfo(np.int64).min, dtype=np.int64), np.empty(n_cols))
    pf = vbt.Portfolio.from_order_func(
        pd.DataFrame(close, index=index, columns=pd.RangeIndex(n_cols)),
        _order, size, price, as2d(fees), as2d(fixed), as2d(slippage), float(granularity), capped,
        pre_segment_func_nb=_pre_segment,
        pre_segment_args=(*state, size, price, np.asarray(sessions, dtype=np.int64)),
        post_order_func_nb=_post_order,
        segment_mask=active, call_seq="default", group_by=group, cash_sharing=True, init_cash=init_cash,
        freq=freq,
    )
    return pf.orders.values, capped
