"""Backtest: target weights + OHLCV panel -> simulated portfolio (the only layer that imports vectorbt).

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
- Trading rules (``kronos_quant.trading_rules``): price limits, and ``settlement="T+1"``: shares
  bought in a session (a calendar date) are not sold in that session. Enforced on shares, not
  weights: each sell is capped at the shares held since before the session (``backtest.sessions``,
  a vectorbt order-function simulation, used when some session has several bars). With daily
  bars and next-open execution every sell comes a session after every buy, so T+1 never binds
  and the plain ``from_orders`` simulation runs.
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

Modules: ``core`` (``backtest_weights``, the order arrays and the vectorbt runs), ``sessions``
(T+1 on shares), ``result`` (``BacktestResult`` and the books kept from the fills).
"""

from kronos_quant.backtest.core import BENCHMARK_NAME, backtest_weights, execution_targets
from kronos_quant.backtest.result import BacktestResult

__all__ = ["BENCHMARK_NAME", "BacktestResult", "backtest_weights", "execution_targets"]
