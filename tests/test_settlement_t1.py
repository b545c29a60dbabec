"""T+1 on shares: a sell is capped at the shares held since before the session, whatever the prices do
within it (hand-computed cases), and the T+1 simulation reproduces vectorbt's from_orders exactly where
the rule does not bind (intraday, one order per instrument and session; and daily bars)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos_quant.backtest import backtest_weights
from tests.conftest import panel_from_prices


def _bars(days: list[str], times: list[str]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([pd.Timestamp(f"{d} {t}") for d in days for t in times])


BARS = _bars(["2024-03-04", "2024-03-05", "2024-03-06"], ["10:00", "10:05", "10:10", "10:15"])


def _run_intraday_case(move_to: float) -> tuple[pd.DataFrame, object]:
    """2,000 shares held from day 1, 3,000 more bought at 10:05 on day 2, the price moves to ``move_to`` at
    10:10 (inside the 10% limit) and the target goes to 0 there; again at 10:05 on day 3."""
    px = [10.0] * 4 + [10.0, 10.0, move_to, move_to] + [move_to] * 4
    panel = panel_from_prices({"600000": px, "000001": [10.0] * 12}, stamps=BARS)
    # Decided at 10:00 day 1 (fills 10:05), 10:00 day 2 (fills 10:05), 10:05 day 2 (fills 10:10), 10:00 day 3.
    weights = pd.DataFrame({"600000": [0.2, 0.5, 0.0, 0.0], "000001": 0.0}, index=BARS[[0, 4, 5, 8]])
    res = backtest_weights(panel, weights, init_cash=100_000.0, settlement="T+1", lot_size=100, with_gross=False)
    return res.orders[res.orders["instrument"] == "600000"].reset_index(drop=True), res


@pytest.mark.parametrize("move_to", [10.8, 9.2])
def test_t_plus_one_caps_sells_at_the_shares_held_before_the_session(move_to: float) -> None:
    orders, res = _run_intraday_case(move_to)
    # Day 1 10:05: 0.2 x 100,000 / 10 = 2,000 shares. Day 2 10:05: value 100,000 -> 5,000 shares: buy 3,000.
    # Day 2 10:10: target 0 wants all 5,000; only the 2,000 held since before the session may go -- at
    # +8% (weights would have allowed 2,100) as at -8% (weights would have allowed 1,800).
    # Day 3 10:05: the 3,000 bought on day 2 are sold.
    assert orders[["timestamp", "side", "size"]].values.tolist() == [
        [BARS[1], "buy", 2000.0], [BARS[5], "buy", 3000.0], [BARS[6], "sell", 2000.0], [BARS[9], "sell", 3000.0]]
    assert orders["price"].tolist() == [10.0, 10.0, move_to, move_to]
    assert res.blocked.loc[BARS[6], "600000"] and res.blocked["600000"].sum() == 1
    cash = 100_000 - 20_000 - 30_000 + 2_000 * move_to
    assert res.equity.loc[BARS[6]] == pytest.approx(cash + 3_000 * move_to)
    assert res.equity.iloc[-1] == pytest.approx(cash + 3_000 * move_to)  # all cash after day 3


def test_t_plus_one_counts_every_buy_of_the_session() -> None:
    # Two buys in one session (10:05 and 10:10) and a sell at 10:15: none of the 600 shares bought that
    # day may go; the 1,000 held from the day before may.
    bars = _bars(["2024-03-04", "2024-03-05"], ["10:00", "10:05", "10:10", "10:15"])
    panel = panel_from_prices({"600000": [10.0] * 8}, stamps=bars)
    weights = pd.DataFrame({"600000": [0.1, 0.13, 0.16, 0.0]}, index=bars[[0, 4, 5, 6]])
    res = backtest_weights(panel, weights, init_cash=100_000.0, settlement="T+1", lot_size=100, with_gross=False)
    assert res.orders[["timestamp", "side", "size"]].values.tolist() == [
        [bars[1], "buy", 1000.0], [bars[5], "buy", 300.0], [bars[6], "buy", 300.0], [bars[7], "sell", 1000.0]]


def _random_case(bars: pd.DatetimeIndex, n: int, rebalance: np.ndarray, seed: int) -> tuple[object, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    names = ["600000", "600519", "000001"][:n]
    closes = {k: 10.0 * np.exp(np.cumsum(rng.normal(0, 0.01, len(bars)))) for k in names}
    opens = {k: v * np.exp(rng.normal(0, 0.003, len(bars))) for k, v in closes.items()}
    panel = panel_from_prices(closes, opens, stamps=bars)
    weights = pd.DataFrame(rng.dirichlet(np.ones(n + 1), len(rebalance))[:, :n], index=bars[rebalance], columns=names)
    return panel, weights


COSTS = {"fees": 0.0005, "min_fee": 5.0, "sell_tax": 0.0005, "slippage": 0.001, "lot_size": 100}


def test_t_plus_one_simulation_matches_from_orders_where_it_does_not_bind() -> None:
    # One decision per session (at its first bar, executed at the second): every sell comes a session after
    # the instrument's last buy, so T+1 (vectorbt order function) and T+0 (from_orders) must agree exactly.
    days = [str(d.date()) for d in pd.bdate_range("2024-03-04", periods=6)]
    bars = _bars(days, ["09:35", "09:40", "09:45", "13:05", "13:10"])
    panel, weights = _random_case(bars, 3, np.arange(0, len(bars), 5), seed=3)
    t1 = backtest_weights(panel, weights, init_cash=100_000.0, settlement="T+1", **COSTS)
    t0 = backtest_weights(panel, weights, init_cash=100_000.0, settlement="T+0", **COSTS)
    assert (t0.orders["side"] == "sell").sum() >= 5 and (t0.orders["fees"] == 5.0).any()  # sells and minimum fees
    pd.testing.assert_frame_equal(t1.orders, t0.orders, check_exact=False, rtol=1e-12)
    for name in ("equity", "benchmark_equity", "gross_equity"):
        np.testing.assert_allclose(getattr(t1, name), getattr(t0, name), rtol=1e-12)
    assert not t1.blocked.to_numpy().any()


def test_t_plus_one_never_binds_on_daily_bars() -> None:
    # Daily bars, next-open execution, a rebalance every day: the same fills as T+0.
    bars = pd.bdate_range("2024-03-04", periods=30)
    panel, weights = _random_case(bars, 3, np.arange(len(bars) - 1), seed=5)
    t1 = backtest_weights(panel, weights, init_cash=100_000.0, settlement="T+1", **COSTS)
    t0 = backtest_weights(panel, weights, init_cash=100_000.0, settlement="T+0", **COSTS)
    assert (t0.orders["side"] == "sell").sum() > 20
    pd.testing.assert_frame_equal(t1.orders, t0.orders)
    assert t1.equity.equals(t0.equity) and not t1.blocked.to_numpy().any()


def test_t_plus_one_intraday_differs_from_t_plus_zero_when_it_binds() -> None:
    # A rebalance at every bar: T+0 sells same-day shares; T+1 does not, and says where it cut back.
    days = [str(d.date()) for d in pd.bdate_range("2024-03-04", periods=4)]
    bars = _bars(days, ["09:35", "09:40", "09:45", "13:05", "13:10"])
    panel, weights = _random_case(bars, 2, np.arange(len(bars) - 1), seed=7)
    t1 = backtest_weights(panel, weights, init_cash=100_000.0, settlement="T+1", **COSTS)
    t0 = backtest_weights(panel, weights, init_cash=100_000.0, settlement="T+0", **COSTS)
    assert t1.blocked.to_numpy().any() and len(t1.orders) != len(t0.orders)
    day = t1.orders["timestamp"].dt.normalize()
    for (_, inst), g in t1.orders.groupby([day, "instrument"]):
        signed = np.where(g["side"] == "buy", g["size"], -g["size"]).cumsum()
        before = t1.orders[(t1.orders["instrument"] == inst) & (day < g["timestamp"].iloc[0].normalize())]
        held = np.where(before["side"] == "buy", before["size"], -before["size"]).sum()
        sold = np.cumsum(np.where(g["side"] == "sell", g["size"], 0.0))
        assert (sold <= held + 1e-9).all(), (inst, held, signed)  # never more than the start-of-session shares
