"""Backtest: hand-checked P&L with costs, next-open execution (no look-ahead), price limits, min fee.

Each ``backtest_weights`` call is one vectorbt simulation (the first in a process compiles or loads
numba code); the toy panels are tiny and the main result is shared by a module-scoped fixture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from kronos_quant.backtest import BacktestResult, backtest_weights, execution_targets
from kronos_quant.data import load_panel
from kronos_quant.data.calendar import infer_periods_per_year
from kronos_quant.errors import DataError
from kronos_quant.portfolio import build_weights
from kronos_quant.signals import compute_signal
from tests.conftest import panel_from_prices

DAYS = pd.date_range("2024-01-01", periods=5, freq="D")
FEES, SLIP, FIXED = 0.001, 0.002, 0.5


def _panel(opens: dict[str, list[float]], closes: dict[str, list[float]], stamps: pd.DatetimeIndex = DAYS) -> pl.DataFrame:
    return panel_from_prices(closes, opens, stamps=stamps)


OPEN = {"A": [10, 10, 11, 12, 12], "B": [20, 20, 19, 18, 20], "C": [5, 5, 5, 6, 6]}
CLOSE = {"A": [10, 11, 12, 12, 13], "B": [20, 19, 18, 19, 21], "C": [5, 5, 6, 6, 5]}
WEIGHTS = pd.DataFrame({"A": [0.5, 0.0], "B": [0.25, 0.25], "C": [0.0, 0.5]}, index=[DAYS[0], DAYS[2]])


@pytest.fixture(scope="module")
def toy() -> BacktestResult:
    panel = _panel({k: [float(x) for x in v] for k, v in OPEN.items()}, {k: [float(x) for x in v] for k, v in CLOSE.items()})
    return backtest_weights(panel, WEIGHTS, init_cash=1000.0, fees=FEES, slippage=SLIP, fixed_fee=FIXED)


def _buy(shares: float, price: float, fees: float, slip: float, fixed: float) -> float:
    """Cash paid for a buy."""
    return shares * price * (1 + slip) * (1 + fees) + fixed


def _sell(shares: float, price: float, fees: float, slip: float, fixed: float) -> float:
    """Cash received for a sell."""
    return shares * price * (1 - slip) * (1 - fees) - fixed


def _hand_final(fees: float, slip: float, fixed: float) -> float:
    """Final value at the last close, computed step by step from prices, weights and costs."""
    # Day 0 close: weights A .5, B .25 -> traded at day 1 open (A 10, B 20) with 1000 in cash.
    a, b = 0.5 * 1000 / 10, 0.25 * 1000 / 20  # 50 and 12.5 shares
    cash = 1000 - _buy(a, 10, fees, slip, fixed) - _buy(b, 20, fees, slip, fixed)
    # Day 2 close: weights A 0, B .25, C .5 -> traded at day 3 open (A 12, B 18, C 6); targets are
    # fractions of the value at that open; sells go first.
    value3 = cash + a * 12 + b * 18
    b_new, c_new = 0.25 * value3 / 18, 0.5 * value3 / 6
    cash += _sell(a, 12, fees, slip, fixed)
    cash += _sell(b - b_new, 18, fees, slip, fixed) if b_new < b else -_buy(b_new - b, 18, fees, slip, fixed)
    cash -= _buy(c_new, 6, fees, slip, fixed)
    return cash + b_new * 21 + c_new * 5  # valued at the day 4 close (B 21, C 5)


def test_hand_checked_pnl_with_costs(toy: BacktestResult) -> None:
    assert toy.equity.iloc[-1] == pytest.approx(_hand_final(FEES, SLIP, FIXED), rel=1e-12)
    assert toy.gross_equity is not None
    # without costs, on paper: cash 250 -> value 1075 at day 3 open -> 268.75 cash + 14.93 B + 89.58 C
    assert _hand_final(0.0, 0.0, 0.0) == pytest.approx(268.75 + 268.75 / 18 * 21 + 537.5 / 6 * 5)
    assert toy.gross_equity.iloc[-1] == pytest.approx(_hand_final(0.0, 0.0, 0.0), rel=1e-12)
    assert toy.equity.iloc[-1] < toy.gross_equity.iloc[-1]
    # nothing happens before the first execution bar; day 1 value is marked at the close
    assert toy.equity.iloc[0] == 1000.0
    cash1 = 1000 - _buy(50, 10, FEES, SLIP, FIXED) - _buy(12.5, 20, FEES, SLIP, FIXED)
    assert toy.equity.iloc[1] == pytest.approx(cash1 + 50 * 11 + 12.5 * 19)
    assert toy.returns.iloc[1] == pytest.approx(toy.equity.iloc[1] / 1000 - 1)
    assert toy.positions.loc[DAYS[1], "A"] == pytest.approx(50 * 11 / toy.equity.iloc[1])


def test_orders_costs_and_turnover(toy: BacktestResult) -> None:
    orders = toy.orders
    assert orders["timestamp"].tolist() == [DAYS[1]] * 2 + [DAYS[3]] * 3
    # day 1: buy A, B; day 3: sell A, top B up (value grew, so 25% of it is more than 12.5 shares), buy C
    assert orders["side"].tolist() == ["buy", "buy", "sell", "buy", "buy"]
    day1 = orders[orders["timestamp"] == DAYS[1]]
    assert day1["size"].tolist() == pytest.approx([50.0, 12.5])
    assert day1["price"].tolist() == pytest.approx([10 * (1 + SLIP), 20 * (1 + SLIP)])
    assert orders["fees"].to_numpy() == pytest.approx(orders["value"].to_numpy() * FEES + FIXED)
    assert toy.costs["fees"].sum() == pytest.approx(orders["fees"].sum())
    assert toy.costs.loc[DAYS[1], "slippage"] == pytest.approx((500 + 250) * SLIP)
    assert toy.costs["total"].sum() == pytest.approx(toy.costs["fees"].sum() + toy.costs["slippage"].sum())
    assert toy.turnover.loc[DAYS[1]] == pytest.approx(0.5 * 750 * (1 + SLIP) / 1000)  # one-way
    assert toy.turnover.loc[[DAYS[0], DAYS[2], DAYS[4]]].eq(0).all()
    assert toy.targets.loc[DAYS[1]].tolist() == [0.5, 0.25, 0.0] and toy.targets.loc[DAYS[2]].isna().all()
    assert toy.periods_per_year == 252.0


def test_benchmark_equal_weight_buy_and_hold(toy: BacktestResult) -> None:
    w = (1 - 3 * FIXED / 1000) / (3 * (1 + FEES) * (1 + SLIP))
    shares = {k: w * 1000 / OPEN[k][1] for k in OPEN}
    expected = sum(shares[k] * CLOSE[k][-1] for k in OPEN)  # all cash spent on day 1, then held
    assert toy.benchmark_equity.iloc[-1] == pytest.approx(expected, rel=1e-9)
    assert toy.benchmark_equity.iloc[0] == 1000.0
    gross = sum(1000 / 3 / OPEN[k][1] * CLOSE[k][-1] for k in OPEN)
    assert toy.gross_benchmark_returns is not None
    assert (1 + toy.gross_benchmark_returns).prod() * 1000 == pytest.approx(gross)


def test_no_look_ahead_perfect_foresight_signal_earns_nothing() -> None:
    # All moves happen overnight (open == close of the same bar); A and B alternate +10% / -10%.
    ra = np.array([0.0, 0.1, -0.1, 0.1, -0.1, 0.1, -0.1, 0.1])
    a = 100 * np.cumprod(1 + ra)
    b = 100 * np.cumprod(1 - ra)
    stamps = pd.date_range("2024-01-01", periods=len(ra), freq="D")
    panel = _panel({"A": list(a), "B": list(b)}, {"A": list(a), "B": list(b)}, stamps)
    closes = pd.DataFrame({"A": a, "B": b}, index=stamps)
    foresight = closes.shift(-1) / closes - 1  # the NEXT bar's close-to-close return, known at t
    weights = (foresight.rank(axis=1) == 2).astype(float).iloc[:-1]  # all-in on tomorrow's winner
    res = backtest_weights(panel, weights, init_cash=1000.0, with_gross=False)
    # trading at the close of t would earn +10% every bar; at the next open it earns nothing of it
    assert res.returns.max() < 0.01
    assert res.equity.iloc[-1] < 1000.0
    assert res.gross_returns is None


def test_price_limit_blocks_buys_at_limit_up_and_sells_at_limit_down() -> None:
    opens = {"A": [10, 11, 11, 11, 11], "B": [10, 10, 10, 9, 9], "C": [10] * 5, "D": [10, 10, 10, 11, 11]}
    panel = _panel({k: [float(x) for x in v] for k, v in opens.items()}, {k: [float(x) for x in v] for k, v in opens.items()})
    weights = pd.DataFrame({"A": [0.2, 0.2, 0.2], "B": [0.2, 0.0, 0.0], "C": [0.2, 0.2, 0.2], "D": [0.2, 0.0, 0.0]},
                           index=DAYS[[0, 2, 3]])
    res = backtest_weights(panel, weights, init_cash=1000.0, price_limit=0.1, with_gross=False)
    orders = res.orders.set_index(["timestamp", "instrument"])["side"]
    assert res.blocked.loc[DAYS[1], "A"] and ("A" not in orders.loc[DAYS[1]].index)  # limit-up: no buy
    assert orders.loc[(DAYS[3], "A")] == "buy"  # bought once the limit is gone
    assert res.blocked.loc[DAYS[3], "B"] and ("B" not in orders.loc[DAYS[3]].index)  # limit-down: no sell
    assert orders.loc[(DAYS[4], "B")] == "sell"
    assert orders.loc[(DAYS[3], "D")] == "sell"  # selling at limit-up is allowed
    assert int(res.blocked.to_numpy().sum()) == 2
    free = backtest_weights(panel, weights, init_cash=1000.0, with_gross=False)
    assert (free.orders["timestamp"].eq(DAYS[1]) & free.orders["instrument"].eq("A")).any()
    assert not free.blocked.to_numpy().any()


def test_min_fee_and_lot_size() -> None:
    panel = _panel({k: [float(x) for x in v] for k, v in OPEN.items()}, {k: [float(x) for x in v] for k, v in CLOSE.items()})
    res = backtest_weights(panel, WEIGHTS, init_cash=1000.0, fees=FEES, min_fee=1.0, lot_size=1.0, with_gross=False)
    orders = res.orders
    assert len(orders) == 5
    assert orders["fees"].to_numpy() == pytest.approx(np.maximum(orders["value"].to_numpy() * FEES, 1.0), abs=1e-9)
    assert np.allclose(orders["size"], np.round(orders["size"]))


def test_execution_mapping_and_validation() -> None:
    bars = pd.DatetimeIndex(["2024-01-05", "2024-01-08", "2024-01-09"])  # Fri, Mon, Tue
    w = pd.DataFrame({"A": [1.0, 0.5, 0.2]}, index=pd.DatetimeIndex(["2024-01-05", "2024-01-06", "2024-01-09"]))
    out = execution_targets(w, bars, pd.Index(["A", "B"]))
    assert np.isnan(out[0]).all()  # nothing executes on the signal bar itself
    assert out[1].tolist() == [0.5, 0.0]  # Friday's and Saturday's rows both map to Monday: the last wins
    assert np.isnan(out[2]).all()  # a row on the last bar has no next bar
    panel = _panel({"A": [1.0] * 5}, {"A": [1.0] * 5})
    with pytest.raises(DataError, match="absent from the panel"):
        backtest_weights(panel, pd.DataFrame({"Z": [1.0]}, index=DAYS[:1]))
    with pytest.raises(ValueError, match="inf"):
        backtest_weights(panel, pd.DataFrame({"A": [np.inf]}, index=DAYS[:1]))
    with pytest.raises(ValueError, match="fees"):
        backtest_weights(panel, pd.DataFrame({"A": [1.0]}, index=DAYS[:1]), fees=-0.1)


def test_infer_periods_per_year() -> None:
    assert infer_periods_per_year(pd.bdate_range("2024-01-01", periods=30)) == 252.0
    assert infer_periods_per_year(pd.date_range("2024-01-05", periods=20, freq="W-FRI")) == 52.0
    intraday = pd.DatetimeIndex([d + pd.Timedelta(minutes=5 * i) for d in pd.bdate_range("2024-01-01", periods=3)
                                 for i in range(48)])
    assert infer_periods_per_year(intraday) == 252.0 * 48
    assert infer_periods_per_year(pd.date_range("2024-01-01", periods=60, freq="D")) == 365.0  # a 7-day market
    assert infer_periods_per_year(pd.date_range("2020-01-31", periods=24, freq="ME")) == 12.0


def test_backtest_annualises_a_seven_day_market_by_365() -> None:
    """One definition of bars per year: the backtest uses the data calendar's (365 for crypto-style daily bars)."""
    stamps = pd.date_range("2024-01-01", periods=21, freq="D")  # every day of the week
    prices = {"A": [10.0 + i for i in range(21)], "B": [20.0 - 0.1 * i for i in range(21)]}
    res = backtest_weights(panel_from_prices(prices, stamps=stamps),
                           pd.DataFrame({"A": [1.0], "B": [0.0]}, index=stamps[:1]), with_gross=False)
    assert res.periods_per_year == 365.0


SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def test_real_sp500_ragged_panel_with_missing_open() -> None:
    path = SHARED / "data" / "sp500_daily_2013_2017.parquet"
    if not path.is_file():
        pytest.skip(f"real data not available at {path} (the ../shared folder is absent)")
    panel = load_panel(path, start="2017-01-01", validate=False)  # BHF and APTV start in 2017; BHF misses an open
    scores = compute_signal("momentum", panel=panel, lookback=20)
    weights = build_weights("topk_dropout", scores, k=5, n_drop=1, cash_buffer=0.02).iloc[::5]
    # BHF has no open on 2017-07-26: a sell decided on 2017-07-25 cannot execute
    extra = pd.DataFrame(0.0, index=pd.DatetimeIndex(["2017-07-24", "2017-07-25"]), columns=weights.columns)
    extra.loc["2017-07-24", ["A", "BHF"]] = 0.3
    weights = pd.concat([weights.drop(index=extra.index, errors="ignore"), extra]).sort_index()
    res = backtest_weights(panel, weights, fees=0.0005, slippage=0.0005, with_gross=False)
    assert np.isfinite(res.equity.to_numpy()).all() and np.isfinite(res.benchmark_equity.to_numpy()).all()
    assert res.blocked.loc["2017-07-26", "BHF"]
    bhf = res.orders[res.orders["instrument"] == "BHF"]
    assert pd.Timestamp("2017-07-25") in set(bhf["timestamp"]) and pd.Timestamp("2017-07-26") not in set(bhf["timestamp"])
    assert res.positions.sum(axis=1).max() <= 1.0 + 1e-9
    assert res.periods_per_year == 252.0
